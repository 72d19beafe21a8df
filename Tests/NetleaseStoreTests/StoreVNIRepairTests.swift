import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

/// A store written while automatic VNIs could run past 24 bits opens with every VNI in 1...16777215 again.
final class StoreVNIRepairTests: StoreTestCase {
    func testVNIsPast24BitsAreGivenTheLowestFreeOneAtOpen() async throws {
        let store = try openStore()
        try await store.createNetwork(NetworkSpec(name: "top", subnet: subnet("10.1.0.0/24"), vni: 16_777_215))
        try await store.createNetwork(NetworkSpec(name: "low", subnet: subnet("10.2.0.0/24"), vni: 1))
        try await store.createNetwork(NetworkSpec(name: "over", subnet: subnet("10.3.0.0/24"), vni: 3))
        store.close()
        // What the old allocator wrote after VNI 16777215.
        try withDatabase { db in try db.execute("UPDATE networks SET vni = 16777216 WHERE name = 'over'") }

        let reopened = try openStore()
        let vnis = try await reopened.networks().map { "\($0.spec.name)=\($0.spec.vni)" }
        XCTAssertEqual(vnis, ["low=1", "over=2", "top=16777215"])
        reopened.close()
        let stored = try withDatabase { db in
            try db.query("SELECT vni FROM networks WHERE name = 'over'") { $0.int(0) }
        }
        XCTAssertEqual(stored, [2], "the repair is written, not only made in memory")
    }
}
