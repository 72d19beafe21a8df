import Foundation

// The values the protocol model keeps and the expectations it builds (see ProtocolModel.swift).

/// A disagreement between the coordinator and the model, with what was expected.
struct ModelFailure: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

// MARK: - values

enum IPText {
    /// A dotted quad: four decimal octets 0–255 without leading zeros.
    static func parse(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                part.count == 1 || part.first != "0", let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    static func text(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }
}

struct MSubnet: Equatable {
    let base: UInt32
    let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let base = IPText.parse(String(parts[0])),
            parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), (1...2).contains(parts[1].count),
            let prefix = Int(parts[1]), (0...32).contains(prefix)
        else { return nil }
        self.init(base: base, prefix: prefix)
        guard base & ~mask == 0 else { return nil }
    }

    init(base: UInt32, prefix: Int) {
        self.base = base
        self.prefix = prefix
    }

    var mask: UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }
    var broadcast: UInt32 { base | ~mask }
    var text: String { "\(IPText.text(base))/\(prefix)" }
    func contains(_ a: UInt32) -> Bool { a & mask == base }
    func isHost(_ a: UInt32) -> Bool { contains(a) && a != base && a != broadcast }
    func overlaps(_ o: MSubnet) -> Bool { base <= o.broadcast && o.base <= broadcast }
    var hosts: ClosedRange<UInt32> { (base + 1)...(broadcast - 1) }

    /// Not unicast space (§5 NETWORK-CREATE): 0/8, loopback, link-local, multicast, reserved.
    var isOutsideUnicast: Bool {
        let blocks = [
            MSubnet(base: 0, prefix: 8), MSubnet(base: 127 << 24, prefix: 8),
            MSubnet(base: 169 << 24 | 254 << 16, prefix: 16), MSubnet(base: 224 << 24, prefix: 4),
            MSubnet(base: 240 << 24, prefix: 4),
        ]
        return blocks.contains { overlaps($0) }
    }
}

/// The identifier rules of §2 "Identifiers", on canonical wire spellings.
enum IdentifierRules {
    static func bytes(_ canonical: String) -> [UInt8] { WireText.decode(canonical[...]) ?? Array(canonical.utf8) }

    private static func isAlnum(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
    }

    private static func grammar(_ canonical: String, maxBytes: Int) -> Bool {
        let b = bytes(canonical)
        guard let first = b.first, b.count <= maxBytes, isAlnum(first) else { return false }
        return b.allSatisfy { isAlnum($0) || [UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ".")].contains($0) }
    }

    /// Network and host names: 1–63 bytes of ASCII letters, digits, `-`, `_`, `.`, first a letter or digit.
    static func isName(_ canonical: String) -> Bool { grammar(canonical, maxBytes: 63) }

    /// Interface names: the same grammar in 1–15 bytes.
    static func isInterface(_ canonical: String) -> Bool { grammar(canonical, maxBytes: 15) }

    /// Free text: printable, assigned, NFC. Printable ASCII is decided here; any other value must be one the
    /// generator's table has a verdict for (written by hand from the Unicode tables, not computed).
    static func isText(_ canonical: String, maxBytes: Int, allowEmpty: Bool) -> Bool {
        let b = bytes(canonical)
        if b.isEmpty { return allowEmpty }
        if b.count > maxBytes { return false }
        if b.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return false }
        if b.allSatisfy({ $0 < 0x80 }) { return true }
        guard let verdict = ModelPools.freeTextVerdicts[canonical] else {
            preconditionFailure("the model has no verdict for the free text \(canonical)")
        }
        return verdict
    }

    /// `number`: optional `-`, then 1–18 decimal digits.
    static func number(_ text: String) -> Int64? {
        let digits = text.hasPrefix("-") ? text.dropFirst() : text[...]
        guard (1...18).contains(digits.count), digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text)
    }

    /// An `exclude` item: `A`, `A-B` (A <= B) or a CIDR; the addresses it covers.
    static func range(_ text: String) -> ClosedRange<UInt32>? {
        if text.contains("/") {
            guard let s = MSubnet(text) else { return nil }
            return s.base...s.broadcast
        }
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(ends.count), let lo = IPText.parse(String(ends[0])),
            let hi = IPText.parse(String(ends[ends.count - 1])), lo <= hi
        else { return nil }
        return lo...hi
    }

    /// Addresses as merged ranges (`A` or `A-B`), for comparing `exclude` however it is spelled.
    static func rangesText(_ addresses: Set<UInt32>) -> String {
        var ranges: [ClosedRange<UInt32>] = []
        for a in addresses.sorted() {
            if let last = ranges.last, a == last.upperBound + 1 {
                ranges[ranges.count - 1] = last.lowerBound...a
            } else {
                ranges.append(a...a)
            }
        }
        return ranges.map { r in
            r.count == 1 ? IPText.text(r.lowerBound) : "\(IPText.text(r.lowerBound))-\(IPText.text(r.upperBound))"
        }.joined(separator: ",")
    }
}

struct MNetwork {
    var name: String
    var subnet: MSubnet
    var tunnel: String
    var vni: Int64
    var bridge: String
    var mtu: Int64
    var ttl: Int64
    var cooldown: Int64
    var excluded: Set<UInt32>
    var created: Int64

    func isLeasable(_ a: UInt32) -> Bool { subnet.isHost(a) && !excluded.contains(a) }
    var usable: Int { subnet.hosts.count - excluded.filter { subnet.isHost($0) }.count }
}

struct MRecord: Equatable {
    var state: String
    var host = ""
    var owner = ""
    var ifname = ""
    var note = ""
    var mac = ""
    var isStatic = true
    var created: Int64
    var renewed: Int64
    var until: Int64 = 0

    var isBridge: Bool { owner.hasPrefix("bridge:") }
    /// An active host-bound lease of `host`: what losing or removing the host moves to cooldown.
    func isHostBound(to host: String) -> Bool { state == "active" && !isStatic && self.host == host }
}

struct MHost {
    var name: String
    var underlay: UInt32
    var epoch: Int64
    var up: Bool
    var networks: [String]
    var joined: Int64
    var heartbeat: Int64
}

/// What the contract allows as the answer to one request.
struct Expectation {
    struct Refusal: Hashable {
        var code: String
        /// The field an identifier refusal must name (`bad-request field '<key>' …`).
        var field: String?
        /// A refusal that does not rule out success: the contract leaves the choice to the coordinator.
        var soft = false
    }

    var refusals: [Refusal] = []
    var accept: ((WireReply) throws -> Void)?

    var mayFail: Bool { !refusals.isEmpty }
    var maySucceed: Bool { accept != nil && refusals.allSatisfy(\.soft) }

    mutating func refuse(_ code: String, field: String? = nil, soft: Bool = false) {
        refusals.append(Refusal(code: code, field: field, soft: soft))
    }

    mutating func bad(_ field: String? = nil) { refuse("bad-request", field: field) }

    var codes: Set<String> { Set(refusals.map(\.code)) }
}

/// One request as sent: the verb and its fields in order, values as spelled on the wire.
struct ModelRequest {
    var verb: String
    var fields: [(key: String, value: String)]

    var line: String { ([verb] + fields.map { "\($0.key)=\($0.value)" }).joined(separator: " ") }
}
