import XCTest

@testable import NetleaseCore

/// Invariant 10, one name, one key: Swift's `String` compares by canonical equivalence, the store by bytes. The
/// ledger admits only identifiers for which the two agree, and its indexes compare bytes whatever they hold.
final class IdentifierTests: XCTestCase {
    private let t0: Millis = 1_700_000_000_000
    private let precomposed = "caf\u{E9}"  // é as one scalar
    private let decomposed = "cafe\u{301}"  // e + COMBINING ACUTE ACCENT
    private let kelvin = "\u{212A}"  // KELVIN SIGN: canonically equivalent to "K", a singleton decomposition

    private func ledger(_ names: String...) throws -> Ledger {
        var ledger = Ledger()
        var changes: [LedgerChange] = []
        for (index, name) in names.enumerated() {
            _ = try ledger.createNetwork(
                NetworkSpec(name: name, subnet: IPv4Subnet("10.\(index + 1).0.0/24")!),
                now: t0,
                changes: &changes
            )
        }
        return ledger
    }

    private func expectBadRequest<T>(
        naming field: String,
        _ context: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () throws -> T
    ) {
        do {
            let value = try body()
            XCTFail("\(context): expected bad-request naming '\(field)', got \(value)", file: file, line: line)
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .badRequest, "\(context): \(error)", file: file, line: line)
            XCTAssertTrue(
                error.message.contains("'\(field)'"),
                "\(context): '\(error.message)' does not name '\(field)'",
                file: file,
                line: line
            )
        } catch {
            XCTFail("\(context): expected NetleaseError, got \(error)", file: file, line: line)
        }
    }

    /// What the rest of this file relies on: Swift folds these spellings, bytes do not.
    func testSwiftStringEqualityIsCanonicalEquivalenceNotBytes() {
        XCTAssertEqual(precomposed, decomposed)
        XCTAssertFalse(precomposed.utf8.elementsEqual(decomposed.utf8))
        XCTAssertEqual(kelvin + "8s", "K8s", "KELVIN SIGN has a canonical (not only a compatibility) decomposition")
        XCTAssertNotEqual("\u{FB01}", "fi", "compatibility equivalents (the fi ligature) stay apart")
    }

    func testFreeTextRules() {
        // Swift's literals refuse noncharacters; built from their values instead.
        func scalar(_ value: UInt32) -> String { String(Character(Unicode.Scalar(value)!)) }
        let cases: [(String, Bool)] = [
            ("web-1", true), ("k8s pod/ns \u{2603}", true), ("caf\u{E9}", true), ("\u{FB01}", true),
            ("\u{1F600}", true),
            ("\u{E000}", true),  // private use: assigned, stable
            ("\u{1100}\u{1161}", false), ("\u{AC00}", true),  // Hangul jamo compose to a syllable
            ("cafe\u{301}", false), ("\u{212A}", false), ("\u{212B}", false), ("\u{37E}", false),
            ("a\u{0}b", false), ("a\u{1F}", false), ("a\u{7F}", false), ("a\u{9F}", false), ("a\u{2028}", false),
            ("a\u{2029}", false), ("a" + scalar(0xFFFE), false), ("a" + scalar(0xFDD0), false), ("a\u{378}", false),
            ("a\u{10FFFF}", false),
        ]
        for (text, valid) in cases {
            XCTAssertEqual(
                Names.textProblem(text) == nil,
                valid,
                "\(text.unicodeScalars.map { String($0.value, radix: 16) }): \(Names.textProblem(text) ?? "ok")"
            )
        }
        XCTAssertNoThrow(try Names.checkOwner(String(repeating: "\u{E9}", count: 128)))
        XCTAssertThrowsError(try Names.checkOwner(String(repeating: "\u{E9}", count: 128) + "x"))
        XCTAssertThrowsError(try Names.checkOwner(""))
        XCTAssertNoThrow(try Names.checkText("", field: "note", maxBytes: 256, allowEmpty: true))
    }

    // MARK: finding: two spellings, one key in memory

    func testASecondSpellingOfAnOwnerNeverGetsTheFirstOwnersAddress() throws {
        var ledger = try ledger("blue")
        var changes: [LedgerChange] = []
        let first = try ledger.acquire(
            network: "blue",
            owner: precomposed,
            claim: nil,
            wanted: nil,
            now: t0,
            changes: &changes
        )
        do {
            let second = try ledger.acquire(
                network: "blue",
                owner: decomposed,
                claim: nil,
                wanted: nil,
                now: t0,
                changes: &changes
            )
            XCTAssertNotEqual(second.address, first.address, "two owners (different bytes) were given one address")
            XCTFail("a decomposed owner must be refused, got \(second)")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .badRequest, "\(error)")
            XCTAssertTrue(error.message.contains("'owner'"), error.message)
        }
        // Nor may the other spelling release the live lease.
        _ = try? ledger.release(
            network: "blue",
            owner: decomposed,
            address: nil,
            claim: nil,
            now: t0,
            changes: &changes
        )
        XCTAssertEqual(
            try ledger.network("blue").record(first.address)?.state,
            .active,
            "a release under another spelling freed a live lease"
        )
    }

    func testNamesUnderAnotherSpellingAreRefusedNotFolded() throws {
        var ledger = try ledger("K8s")
        var changes: [LedgerChange] = []
        _ = try ledger.join(host: "K1", underlay: IPv4Address(192, 0, 2, 1), networks: [], now: t0, changes: &changes)
        changes = []
        expectBadRequest(naming: "network", "delete") {
            try ledger.deleteNetwork(kelvin + "8s", now: t0, changes: &changes)
        }
        expectBadRequest(naming: "host", "remove host") {
            try ledger.removeHost(kelvin + "1", now: t0, changes: &changes)
        }
        expectBadRequest(naming: "network", "acquire") {
            try ledger.acquire(network: kelvin + "8s", owner: "c1", claim: nil, wanted: nil, now: t0, changes: &changes)
        }
        expectBadRequest(naming: "networks", "join") {
            try ledger.join(
                host: "h2",
                underlay: IPv4Address(192, 0, 2, 2),
                networks: [kelvin + "8s"],
                now: t0,
                changes: &changes
            )
        }
        XCTAssertEqual(changes, [], "a refused request wrote something")
        XCTAssertNotNil(ledger.books["K8s"])
        XCTAssertNotNil(ledger.hosts["K1"])
    }

    func testControlCharactersAndNULAreRefusedInEveryTextField() throws {
        var ledger = try ledger("blue")
        var changes: [LedgerChange] = []
        expectBadRequest(naming: "owner", "NUL") {
            try ledger.acquire(
                network: "blue",
                owner: "web\u{0}x",
                claim: nil,
                wanted: nil,
                now: t0,
                changes: &changes
            )
        }
        expectBadRequest(naming: "owner", "newline") {
            try ledger.acquire(network: "blue", owner: "web\nx", claim: nil, wanted: nil, now: t0, changes: &changes)
        }
        expectBadRequest(naming: "ifname", "interface name with a kernel format") {
            try ledger.acquire(
                network: "blue",
                owner: "web",
                claim: nil,
                wanted: nil,
                ifname: "eth%d",
                now: t0,
                changes: &changes
            )
        }
        expectBadRequest(naming: "note", "note with DEL") {
            try ledger.reserve(
                network: "blue",
                address: IPv4Address(10, 1, 0, 9),
                note: "a\u{7F}",
                now: t0,
                changes: &changes
            )
        }
        expectBadRequest(naming: "note", "note with a C1 control") {
            try ledger.reserve(
                network: "blue",
                address: IPv4Address(10, 1, 0, 9),
                note: "a\u{85}",
                now: t0,
                changes: &changes
            )
        }
        XCTAssertEqual(changes, [])
    }

    // MARK: indexes compare bytes

    /// Records loaded from a store written before the rules existed may hold two spellings; each is its own key.
    func testOwnerIndexesCompareBytes() {
        let spec = NetworkSpec(name: "blue", subnet: IPv4Subnet("10.1.0.0/24")!)
        let one = Lease(
            network: "blue",
            address: IPv4Address(10, 1, 0, 5),
            prefix: 24,
            state: .active,
            owner: precomposed,
            created: t0,
            renewed: t0
        )
        var two = one
        two.address = IPv4Address(10, 1, 0, 6)
        two.owner = decomposed
        let book = AddressBook(spec: spec, records: [one, two])
        XCTAssertEqual(book.activeLease(owner: precomposed)?.address, one.address)
        XCTAssertEqual(book.activeLease(owner: decomposed)?.address, two.address)
        var cooling = book
        var cooled = two
        cooled.state = .cooldown
        cooled.until = t0 + 60_000
        cooling.put(cooled)
        XCTAssertEqual(
            cooling.activeLease(owner: precomposed)?.address,
            one.address,
            "cooling one spelling dropped the other's index entry"
        )
        XCTAssertNil(cooling.coolingLease(owner: precomposed))
        XCTAssertEqual(cooling.coolingLease(owner: decomposed)?.address, two.address)
    }
}
