import Foundation
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseWire
import XCTest

/// Invariant 10 as a property, from the wire to the file and back: random identifiers (combining marks, characters
/// with canonical or compatibility equivalents, NUL and other controls, broken percent escapes, values at and past
/// their length limits) in every identifier field. Each is either refused with `bad-request` naming its field, or
/// parsed to exactly the bytes that were sent; and what is accepted keeps its identity in the ledger and in a real
/// SQLite file across a close and reopen: different bytes are different keys, equal bytes the same key.
///
/// Seeded: a failure names its seed; `NETLEASE_PROPERTY_SEED=<seed>` repeats that run alone.
final class IdentifierPropertyTests: XCTestCase {
    private var directories: [URL] = []

    override func tearDown() {
        for directory in directories { try? FileManager.default.removeItem(at: directory) }
        directories.removeAll()
        super.tearDown()
    }

    func testIdentifiersAreRefusedNamingTheFieldOrKeptByteForByteThroughARestart() async throws {
        let seeds: [UInt64]
        if let text = ProcessInfo.processInfo.environment["NETLEASE_PROPERTY_SEED"], let seed = UInt64(text) {
            seeds = [seed]
        } else {
            seeds = [1, 2, 0xC0FFEE, UInt64.random(in: 0...UInt64.max)]
        }
        for seed in seeds {
            try await run(seed: seed, draws: 600)
        }
    }

    // MARK: one run

    /// Where a drawn value goes: the request line around it, and what the field is.
    private enum Slot: CaseIterable {
        case networkName, network, host, owner, ifname, bridge, note, mac, ownerFilter

        var key: String {
            switch self {
            case .networkName: "name"
            case .network: "network"
            case .host: "host"
            case .owner, .ownerFilter: "owner"
            case .ifname: "ifname"
            case .bridge: "bridge"
            case .note: "note"
            case .mac: "mac"
            }
        }

        func line(_ raw: String) -> String {
            switch self {
            case .networkName: "NETWORK-CREATE name=\(raw) subnet=10.0.0.0/24"
            case .network: "ACQUIRE network=\(raw) owner=o"
            case .host: "JOIN host=\(raw) underlay=192.0.2.1"
            case .owner: "ACQUIRE network=blue owner=\(raw)"
            case .ifname: "ACQUIRE network=blue owner=o ifname=\(raw)"
            case .bridge: "NETWORK-CREATE name=n subnet=10.0.0.0/24 bridge=\(raw)"
            case .note: "RESERVE network=blue address=10.9.0.1 note=\(raw)"
            case .mac: "REPORT-CONFLICT network=blue address=10.9.0.1 mac=\(raw) host=h epoch=1"
            case .ownerFilter: "LEASE-LIST owner=\(raw)"
            }
        }

        /// The parsed value of the field, as the request carries it.
        func value(of request: Request) -> String? {
            switch (self, request) {
            case (.networkName, .networkCreate(let spec)): spec.name
            case (.bridge, .networkCreate(let spec)): spec.bridge
            case (.network, .acquire(let r)): r.network
            case (.owner, .acquire(let r)): r.owner
            case (.ifname, .acquire(let r)): r.ifname
            case (.host, .join(let host, _, _, _)): host
            case (.note, .reserve(_, _, let note)): note
            case (.mac, .reportConflict(_, _, let mac, _)): mac
            case (.ownerFilter, .leaseList(let filter)): filter.owner
            default: nil
            }
        }
    }

    /// What the store must give back after the restart, by the exact bytes each value was accepted with.
    private struct Accepted {
        var networks: [[UInt8]: String] = [:]
        var hosts: Set<[UInt8]> = []
        var owners: [[UInt8]: IPv4Address] = [:]
        var notes: [IPv4Address: [UInt8]] = [:]
        var ifnames: [[UInt8]: [UInt8]] = [:]  // owner bytes → ifname bytes
        var macs: [IPv4Address: [UInt8]] = [:]
    }

    private func run(seed: UInt64, draws: Int) async throws {
        let context = "seed \(seed) (repeat with NETLEASE_PROPERTY_SEED=\(seed))"
        var rng = PropertySeededGenerator(seed: seed)
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-identifiers-\(UUID().uuidString)")
        directories.append(directory)
        let clock = ManualLeaseClock()
        var store = try SQLiteLeaseStore(directory: directory.path, clock: clock)
        defer { store.close() }
        _ = try await store.createNetwork(NetworkSpec(name: "blue", subnet: IPv4Subnet("10.9.0.0/16")!))
        let reporter = try await store.join(host: "h", underlay: IPv4Address(192, 0, 2, 1), networks: ["blue"])
        let claim = HostClaim(host: "h", epoch: reporter.host.epoch)
        var accepted = Accepted()
        // Reservations and conflicts far above the addresses the owners are given (from 10.9.0.1 up).
        var nextAddress = IPv4Address(10, 9, 200, 1).value
        var nextSubnet = 0
        var refusedCount = 0
        var history: [String] = []

        /// Applies an accepted value to the store and checks it comes back with the same bytes.
        func keep(_ value: String, slot: Slot, draw: Int) async throws {
            let bytes = Array(value.utf8)
            let at = "\(context): \(slot.key) \(bytes)"
            switch slot {
            case .networkName:
                guard accepted.networks[bytes] == nil else { return }
                nextSubnet += 1
                let subnet = IPv4Subnet("172.\(16 + nextSubnet / 256).\(nextSubnet % 256).0/24")!
                // Its own bridge: default bridge names are cut to 15 bytes, so long names would share one.
                let spec = try await store.createNetwork(
                    NetworkSpec(name: value, subnet: subnet, bridge: "pb\(nextSubnet)")
                )
                XCTAssertEqual(Array(spec.name.utf8), bytes, at)
                accepted.networks[bytes] = subnet.description
            case .host:
                // "h" is the reporting host of the MAC draws: joining it again would change its epoch.
                if accepted.hosts.contains(bytes) || value == "h" { return }
                let count = accepted.hosts.count
                let underlay = IPv4Address(10, 200, UInt8(count / 250), UInt8(1 + count % 250))
                let joined = try await store.join(host: value, underlay: underlay, networks: ["blue"])
                XCTAssertEqual(Array(joined.host.name.utf8), bytes, at)
                accepted.hosts.insert(bytes)
            case .owner:
                guard !Lease.isBridgeOwner(value) else { return }  // refused by the ledger, checked in other tests
                let lease = try await store.acquire(network: "blue", owner: value, claim: nil, address: nil, ifname: "")
                XCTAssertEqual(Array(lease.owner.utf8), bytes, at)
                if let earlier = accepted.owners[bytes] {
                    XCTAssertEqual(lease.address, earlier, "\(at): the same owner bytes got another address")
                } else {
                    let holder = accepted.owners.first { $0.value == lease.address }
                    XCTAssertNil(holder, "\(at): owner \(bytes) was given the address of owner \(holder?.key ?? [])")
                    accepted.owners[bytes] = lease.address
                }
            case .ifname:
                guard !value.isEmpty else { return }
                let owner = "if-owner-\(draw)"
                let lease = try await store.acquire(
                    network: "blue",
                    owner: owner,
                    claim: nil,
                    address: nil,
                    ifname: value
                )
                XCTAssertEqual(Array(lease.ifname.utf8), bytes, at)
                accepted.owners[Array(owner.utf8)] = lease.address
                accepted.ifnames[Array(owner.utf8)] = bytes
            case .note:
                let address = IPv4Address(nextAddress)
                nextAddress += 1
                let lease = try await store.reserve(network: "blue", address: address, note: value)
                XCTAssertEqual(Array(lease.note.utf8), bytes, at)
                accepted.notes[address] = bytes
            case .mac:
                let address = IPv4Address(nextAddress)
                nextAddress += 1
                let lease = try await store.reportConflict(network: "blue", address: address, mac: value, claim: claim)
                XCTAssertEqual(Array(lease.mac.utf8), bytes, at)
                accepted.macs[address] = bytes
            case .ownerFilter:
                let found = try await store.leases(.init(network: "blue", owner: value))
                XCTAssertTrue(
                    found.allSatisfy { Array($0.owner.utf8) == bytes },
                    "\(at): the filter matched other bytes"
                )
            case .network, .bridge:
                return  // refused values were the point; an accepted one names no existing network or is unused
            }
        }

        for draw in 0..<draws {
            let slot = Slot.allCases.randomElement(using: &rng)!
            let (raw, expected) = drawValue(for: slot, history: &history, using: &rng)
            let line = slot.line(raw)
            let at = "\(context), draw \(draw): \(line.prefix(160))"
            let request: Request
            do {
                request = try Request(line: Substring(line))
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .badRequest, "\(at): \(error)")
                XCTAssertTrue(
                    error.message.contains("'\(slot.key)'"),
                    "\(at): '\(error.message)' does not name the field"
                )
                refusedCount += 1
                continue
            }
            guard let expected else {
                XCTFail("\(at): a value that is not a valid percent-encoding of UTF-8 was accepted")
                continue
            }
            guard let value = slot.value(of: request) else {
                XCTFail("\(at): parsed as \(request)")
                continue
            }
            XCTAssertEqual(Array(value.utf8), expected, "\(at): the parsed value has other bytes than were sent")
            // An independent check of what was accepted: the standard library's own NFC, not Foundation's.
            if !value.isEmpty, ![Slot.networkName, .network, .host, .ifname, .bridge].contains(slot) {
                XCTAssertEqual(Array(value.utf8), stdlibNFC(value), "\(at): accepted text that is not NFC")
                XCTAssertFalse(value.utf8.contains { $0 < 0x20 || $0 == 0x7F }, "\(at): accepted a control byte")
            }

            // The accepted value in the store, under exactly its bytes. The ledger applies the same rules as the
            // parser, so it must not refuse what the parser accepted.
            do {
                try await keep(value, slot: slot, draw: draw)
            } catch {
                XCTFail("\(at): the store refused what the parser accepted: \(error)")
            }
        }

        XCTAssertGreaterThan(refusedCount, draws / 10, "\(context): the draws were too tame to test refusals")
        XCTAssertGreaterThan(accepted.owners.count, draws / 40, "\(context): too few owners were accepted")

        // Close, reopen the same file, and find everything under exactly the bytes it was acknowledged with.
        store.close()
        store = try SQLiteLeaseStore(directory: directory.path, clock: clock)
        let networks = try await store.networks()
        var storedNetworks: [[UInt8]: String] = [:]
        for summary in networks where summary.spec.name != "blue" {
            storedNetworks[Array(summary.spec.name.utf8)] = summary.spec.subnet.description
        }
        XCTAssertEqual(storedNetworks, accepted.networks, "\(context): networks after the restart")
        let hosts = Set(try await store.hosts().map { Array($0.name.utf8) }).subtracting([Array("h".utf8)])
        XCTAssertEqual(hosts, accepted.hosts, "\(context): hosts after the restart")

        let records = try await store.leases(.init(network: "blue"))
        var owners: [[UInt8]: IPv4Address] = [:]
        for lease in records where lease.state == .active && !lease.isBridge {
            XCTAssertNil(
                owners.updateValue(lease.address, forKey: Array(lease.owner.utf8)),
                "\(context): two active leases of one owner"
            )
        }
        XCTAssertEqual(owners, accepted.owners, "\(context): owners after the restart")
        XCTAssertEqual(Set(owners.values).count, owners.count, "\(context): two owners share an address")
        for (owner, address) in accepted.owners {
            let value = String(decoding: owner, as: UTF8.self)
            let found = try await store.leases(.init(network: "blue", owner: value))
            XCTAssertEqual(found.map(\.address), [address], "\(context): owner \(owner) is not found under its bytes")
            if let ifname = accepted.ifnames[owner] {
                XCTAssertEqual(found.first.map { Array($0.ifname.utf8) }, ifname, "\(context): ifname of \(owner)")
            }
        }
        var notes: [IPv4Address: [UInt8]] = [:]
        var macs: [IPv4Address: [UInt8]] = [:]
        for lease in records {
            if lease.state == .reserved { notes[lease.address] = Array(lease.note.utf8) }
            if lease.state == .conflict { macs[lease.address] = Array(lease.mac.utf8) }
        }
        XCTAssertEqual(notes, accepted.notes, "\(context): notes after the restart")
        XCTAssertEqual(macs, accepted.macs, "\(context): MACs after the restart")
        print(
            "identifiers, \(context): \(refusedCount) of \(draws) refused; kept through a restart: "
                + "\(accepted.networks.count) networks, \(accepted.hosts.count) hosts, \(accepted.owners.count) owners, "
                + "\(accepted.notes.count) notes, \(accepted.macs.count) MACs"
        )
    }

    // MARK: drawing values

    /// Pieces a value is made of. Printable ones that are their own NFC form ...
    private static let plainPieces: [String] = [
        "a", "b", "z", "K", "k", "0", "9", "-", "_", ".", " ", "%", "=", ",", ":", "/", "web-1", "\u{E9}", "\u{C5}",
        "\u{FB01}", "fi", ";", "\u{AC00}", "\u{1F600}", "\u{2603}", "\u{E000}", "\u{200B}",
    ]
    /// ... and the rest: other spellings of the same text (canonical equivalents, combining marks that compose or
    /// reorder), controls and NUL, and characters outside every rule.
    private static let trickyPieces: [String] = [
        "bridge:", "e\u{301}", "\u{212A}", "\u{212B}", "A\u{30A}", "\u{37E}", "\u{1100}\u{1161}", "\u{300}",
        "\u{301}\u{323}", "\u{323}\u{301}", "\u{345}", "\u{0}", "\u{1}", "\u{9}", "\u{A}", "\u{D}", "\u{1B}",
        "\u{7F}", "\u{85}", "\u{2028}", "\u{378}", "\u{FEFF}", "\u{10FFFF}",
    ]

    /// Raw text that is not a valid percent-encoding of UTF-8: a lone '%', bad hex, broken or overlong sequences.
    private static let brokenEscapes = ["%", "%G1", "%4", "%+1", "%C3", "%FF", "%C0%AF", "%ED%A0%80", "%e9"]

    /// Other spellings of a text: the same text to Swift's `==`, other bytes to the file.
    private static func respelled(_ text: String, _ choice: Int) -> String {
        switch choice {
        case 0: text.precomposedStringWithCanonicalMapping
        case 1: text.decomposedStringWithCanonicalMapping
        case 2: text.replacingOccurrences(of: "K", with: "\u{212A}")
        case 3: text.replacingOccurrences(of: "\u{C5}", with: "\u{212B}")
        default: text
        }
    }

    /// A raw field value and the bytes it decodes to (nil: not a valid encoding, so it must be refused). Earlier
    /// texts come back, as they were or spelled otherwise, so that equal and equivalent values meet in the store.
    private func drawValue(
        for slot: Slot,
        history: inout [String],
        using rng: inout PropertySeededGenerator
    )
        -> (String, [UInt8]?)
    {
        var text = ""
        switch Int.random(in: 0..<10, using: &rng) {
        case 0:
            // At or just past a length limit, in one- or two-byte characters.
            let limits: [Slot: Int] = [
                .networkName: 63, .network: 63, .host: 63, .ifname: 15, .bridge: 15,
                .owner: 256, .ownerFilter: 256, .note: 256, .mac: 64,
            ]
            let limit = limits[slot]! + Int.random(in: -1...1, using: &rng)
            let unit = Bool.random(using: &rng) ? "x" : "\u{E9}"
            text = String(repeating: unit, count: unit == "x" ? limit : limit / 2)
        case 1:
            text = ""
        case 2...3 where !history.isEmpty:
            text = Self.respelled(history.randomElement(using: &rng)!, Int.random(in: 0..<5, using: &rng))
        default:
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let pieces = Int.random(in: 0..<4, using: &rng) == 0 ? Self.trickyPieces : Self.plainPieces
                text += pieces.randomElement(using: &rng)!
            }
            if Bool.random(using: &rng) { text = Self.respelled(text, Int.random(in: 0..<2, using: &rng)) }
        }
        history.append(text)
        var raw = LineFormat.escape(text)
        if Int.random(in: 0..<8, using: &rng) == 0 {
            // Escape a plain byte too (allowed), or break the encoding (must be refused).
            if Bool.random(using: &rng) {
                raw = raw.replacingOccurrences(of: "a", with: "%61")
            } else {
                raw += Self.brokenEscapes.randomElement(using: &rng)!
            }
        }
        return (raw, percentDecoded(raw))
    }

    /// The bytes `raw` stands for, or nil when it is not valid percent-encoded UTF-8. Written apart from the
    /// parser on purpose.
    private func percentDecoded(_ raw: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var input = Array(raw.utf8)[...]
        while let byte = input.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = input.popFirst().flatMap(hexValue), let low = input.popFirst().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self) == nil ? nil : bytes
    }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private func stdlibNFC(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        text._withNFCCodeUnits { bytes.append($0) }
        return bytes
    }
}

/// SplitMix64, so that a seed repeats a run exactly.
private struct PropertySeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
