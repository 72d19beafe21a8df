import NetleaseCore
import XCTest

/// Overlapping or repeated excluded ranges are merged: counts stay right and nothing traps (found by fuzzing).
final class ExcludedRangeTests: XCTestCase {
    func testOverlappingExcludesAreMergedAndCountedOnce() throws {
        let subnet = IPv4Subnet("10.3.0.0/28")!
        let ranges = ["10.3.0.1-10.3.0.4", "10.3.0.1-10.3.0.4", "10.3.0.3-10.3.0.6", "10.3.0.7"].map { IPv4Range($0)! }
        XCTAssertEqual(IPv4Range.merged(ranges).map(\.description), ["10.3.0.1-10.3.0.7"])
        let spec = NetworkSpec(name: "x", subnet: subnet, excluded: ranges)
        XCTAssertEqual(spec.usableCount, 14 - 7)

        var ledger = Ledger()
        var changes: [LedgerChange] = []
        let created = try ledger.createNetwork(spec, now: 1, changes: &changes)
        XCTAssertEqual(created.excluded.map(\.description), ["10.3.0.1-10.3.0.7"])
        var handed: [IPv4Address] = []
        for index in 0..<7 {
            handed.append(
                try ledger.acquire(
                    network: "x",
                    owner: "c\(index)",
                    claim: nil,
                    wanted: nil,
                    now: 2,
                    changes: &changes
                ).address
            )
        }
        XCTAssertEqual(handed.map(\.description), (8...14).map { "10.3.0.\($0)" })
        XCTAssertThrowsError(
            try ledger.acquire(
                network: "x",
                owner: "c7",
                claim: nil,
                wanted: nil,
                now: 2,
                changes: &changes
            )
        )
    }

    func testATinySubnetWhollyExcludedIsRefusedNotTrapped() {
        let subnet = IPv4Subnet("10.0.0.0/30")!
        let ranges = ["10.0.0.1", "10.0.0.1", "10.0.0.2"].map { IPv4Range($0)! }
        XCTAssertEqual(NetworkSpec(name: "z", subnet: subnet, excluded: ranges).usableCount, 0)
        var ledger = Ledger()
        var changes: [LedgerChange] = []
        XCTAssertThrowsError(
            try ledger.createNetwork(
                NetworkSpec(name: "z", subnet: subnet, excluded: ranges),
                now: 1,
                changes: &changes
            )
        ) { error in
            XCTAssertEqual((error as? NetleaseError)?.code, .badRequest)
        }
    }
}
