import NetleaseCore
import XCTest

/// A host back from lost gets its own cooling bridge address back (its containers' gateway) even when the pool has
/// no other free address: the address it needs is its own, not a free one.
final class LedgerRejoinTests: XCTestCase {
    func testAHostBackFromLostIntoAFullPoolGetsItsCoolingBridgeAddressBack() throws {
        let start: Millis = 1_700_000_000_000
        var ledger = Ledger()
        var changes: [LedgerChange] = []
        let spec = NetworkSpec(name: "blue", subnet: IPv4Subnet("10.1.0.0/29")!, leaseTTL: 30, cooldown: 600)
        _ = try ledger.createNetwork(spec, now: start, changes: &changes)
        let underlay = IPv4Address("192.0.2.1")!
        let first = try ledger.join(host: "h1", underlay: underlay, networks: ["blue"], now: start, changes: &changes)
        let bridge = try XCTUnwrap(first.bridges.first?.address)

        // Every other address of the /29 goes to static leases, so nothing is free.
        var owner = 0
        while try ledger.network("blue").counts.free > 0 {
            owner += 1
            _ = try ledger.acquire(
                network: "blue",
                owner: "static-\(owner)",
                claim: nil,
                wanted: nil,
                now: start,
                changes: &changes
            )
        }
        let lost = start + 31_000
        XCTAssertEqual(ledger.reclaim(now: lost, changes: &changes), ["h1"])
        XCTAssertEqual(try ledger.network("blue").record(bridge)?.state, .cooldown)
        XCTAssertEqual(try ledger.network("blue").counts.free, 0)

        let back = try ledger.join(
            host: "h1",
            underlay: underlay,
            networks: ["blue"],
            now: lost + 1_000,
            changes: &changes
        )
        XCTAssertEqual(back.bridges.map(\.address), [bridge])
        XCTAssertEqual(try ledger.network("blue").record(bridge)?.state, .active)
        XCTAssertGreaterThan(back.host.epoch, first.host.epoch)
    }

    func testAJoinContinuesAboveTheLastEpochTheHostStatesAndRefusesAnImpossibleOne() throws {
        var ledger = Ledger()
        var changes: [LedgerChange] = []
        let spec = NetworkSpec(name: "blue", subnet: IPv4Subnet("10.1.0.0/24")!)
        _ = try ledger.createNetwork(spec, now: 1, changes: &changes)
        let underlay = IPv4Address("192.0.2.1")!
        let first = try ledger.join(
            host: "h1",
            underlay: underlay,
            networks: [],
            lastEpoch: 41,
            now: 2,
            changes: &changes
        )
        XCTAssertEqual(first.host.epoch, 42)
        XCTAssertTrue(changes.contains(.recordEpoch(42)))
        // A lower last epoch than the counter's changes nothing about the order.
        let second = try ledger.join(
            host: "h2",
            underlay: IPv4Address("192.0.2.2")!,
            networks: [],
            lastEpoch: 3,
            now: 3,
            changes: &changes
        )
        XCTAssertEqual(second.host.epoch, 43)

        changes = []
        for impossible in [-1, Ledger.maximumEpoch, Ledger.maximumEpoch + 1, Int64.max] {
            XCTAssertThrowsError(
                try ledger.join(
                    host: "h3",
                    underlay: IPv4Address("192.0.2.3")!,
                    networks: [],
                    lastEpoch: impossible,
                    now: 4,
                    changes: &changes
                )
            ) { error in
                XCTAssertEqual((error as? NetleaseError)?.code, .badRequest, "\(error)")
            }
        }
        XCTAssertEqual(changes, [])
        XCTAssertNil(ledger.hosts["h3"])
    }

    /// A `last-epoch` further above the counter than `maximumEpochLead` raises only its own host's epoch: the others
    /// continue from the counter, in memory and after the ledger is rebuilt from its rows.
    func testALastEpochFarAboveTheCounterRaisesOnlyItsOwnHostsEpoch() throws {
        var ledger = Ledger()
        var changes: [LedgerChange] = []
        _ = try ledger.createNetwork(
            NetworkSpec(name: "blue", subnet: IPv4Subnet("10.1.0.0/24")!),
            now: 1,
            changes: &changes
        )
        // Host hN joins from 192.0.2.N.
        func join(_ n: Int, lastEpoch: Int64? = nil, now: Millis) throws -> Int64 {
            try ledger.join(
                host: "h\(n)",
                underlay: IPv4Address("192.0.2.\(n)")!,
                networks: [],
                lastEpoch: lastEpoch,
                now: now,
                changes: &changes
            ).host.epoch
        }
        let near = try join(1, lastEpoch: Ledger.maximumEpochLead - 1, now: 2)
        XCTAssertEqual(near, Ledger.maximumEpochLead, "a lead within the cap")
        XCTAssertEqual(ledger.lastEpoch, Ledger.maximumEpochLead, "the counter follows a lead within the cap")
        let far = try join(2, lastEpoch: Ledger.maximumEpoch - 1, now: 3)
        XCTAssertEqual(far, Ledger.maximumEpoch)
        XCTAssertEqual(
            ledger.lastEpoch,
            Ledger.maximumEpochLead + 1,
            "the counter moved by one, not to the stated epoch"
        )
        XCTAssertEqual(
            changes.last(where: { if case .recordEpoch = $0 { true } else { false } }),
            .recordEpoch(Ledger.maximumEpochLead + 1)
        )
        let other = try join(3, now: 4)
        XCTAssertEqual(other, Ledger.maximumEpochLead + 2)

        var rebuilt = Ledger(
            networks: ledger.books.values.map(\.spec),
            hosts: Array(ledger.hosts.values),
            leases: ledger.books.values.flatMap { $0.records.values },
            lastEpoch: ledger.lastEpoch,
            now: 5
        )
        XCTAssertEqual(rebuilt.lastEpoch, Ledger.maximumEpochLead + 2, "h2's epoch does not move the rebuilt counter")
        changes = []
        XCTAssertThrowsError(
            try rebuilt.join(host: "h2", underlay: IPv4Address("192.0.2.2")!, networks: [], now: 6, changes: &changes)
        ) { error in
            XCTAssertEqual((error as? NetleaseError)?.code, .conflict, "\(error)")
        }
        XCTAssertEqual(changes, [], "a refused join changes nothing")
        XCTAssertEqual(
            try rebuilt.join(host: "h1", underlay: IPv4Address("192.0.2.1")!, networks: [], now: 7, changes: &changes)
                .host.epoch,
            Ledger.maximumEpochLead + 3
        )
    }
}
