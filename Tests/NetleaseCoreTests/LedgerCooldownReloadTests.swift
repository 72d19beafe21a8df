import NetleaseCore
import XCTest

/// A cooldown's end is a wall-clock time of the coordinator that wrote it. Rebuilt for a new term on a shared
/// database, the ledger gives every cooldown its full length from the takeover, so a new leader whose clock runs
/// ahead does not hand out an address early; rebuilt from its own file, the ends stay as written.
final class LedgerCooldownReloadTests: XCTestCase {
    func testANewTermRestartsCooldownsAndAReloadOfItsOwnFileKeepsThem() throws {
        let start: Millis = 1_700_000_000_000
        var ledger = Ledger()
        var changes: [LedgerChange] = []
        let spec = NetworkSpec(name: "blue", subnet: IPv4Subnet("10.1.0.0/30")!, cooldown: 60)
        _ = try ledger.createNetwork(spec, now: start, changes: &changes)
        let held = try ledger.acquire(
            network: "blue",
            owner: "web",
            claim: nil,
            wanted: nil,
            now: start,
            changes: &changes
        )
        // The /30's other address stays held: only the cooling one can come back.
        _ = try ledger.acquire(network: "blue", owner: "db", claim: nil, wanted: nil, now: start, changes: &changes)
        let release = { (ledger: inout Ledger, changes: inout [LedgerChange]) in
            try ledger.release(network: "blue", owner: "web", address: nil, claim: nil, now: start, changes: &changes)
        }
        let released = try XCTUnwrap(try release(&ledger, &changes))
        XCTAssertEqual(released.until, start + 60_000)
        let rows = ledger.books.values.flatMap { $0.records.values }
        // The new leader's clock is 45 s ahead of the old one's: by it, 15 s of the cooldown would be left.
        let ahead = start + 45_000
        for (restarting, end) in [(false, start + 60_000), (true, ahead + 60_000)] {
            var rebuilt = Ledger(
                networks: [ledger.books["blue"]!.spec],
                hosts: [],
                leases: rows,
                now: ahead,
                restartingCooldowns: restarting
            )
            XCTAssertEqual(rebuilt.books["blue"]?.record(held.address)?.until, end, "restarting: \(restarting)")
            // A second after the old leader's end: free by it, still cooling after a restart from `ahead`.
            var noted: [LedgerChange] = []
            let next = try? rebuilt.acquire(
                network: "blue",
                owner: "new",
                claim: nil,
                wanted: nil,
                now: start + 61_000,
                changes: &noted
            )
            XCTAssertEqual(next?.address, restarting ? nil : held.address, "restarting: \(restarting)")
        }
    }
}
