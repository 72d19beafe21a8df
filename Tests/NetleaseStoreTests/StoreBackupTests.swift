import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

final class StoreBackupTests: StoreTestCase {
    func testOnlineBackupHoldsEveryAcknowledgedChangeAndOpensAsAStore() async throws {
        let store = try openStore()
        _ = try await store.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
        var acknowledged: [String: IPv4Address] = [:]
        try await withThrowingTaskGroup(of: (String, IPv4Address).self) { group in
            for index in 0..<50 {
                group.addTask {
                    let lease = try await store.acquire(
                        network: "prod",
                        owner: "c\(index)",
                        claim: nil,
                        address: nil,
                        ifname: ""
                    )
                    return ("c\(index)", lease.address)
                }
            }
            for try await (owner, address) in group { acknowledged[owner] = address }
        }
        let before = store.identity()
        let target = makeTemporaryDirectory()
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let path = target.appendingPathComponent(SQLiteLeaseStore.fileName).path
        let identity = try await store.backup(to: path)
        XCTAssertEqual(identity, before, "the backup must hold exactly the acknowledged commits")
        // The live store keeps working and moves on.
        _ = try await store.acquire(network: "prod", owner: "after", claim: nil, address: nil, ifname: "")
        XCTAssertGreaterThan(store.identity().generation, identity.generation)

        // A backup never overwrites a file.
        do {
            _ = try await store.backup(to: path)
            XCTFail("backup overwrote an existing file")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .conflict)
        }

        let copy = try openStore(in: target)
        XCTAssertEqual(copy.identity(), identity)
        let leases = try await copy.leases(.init(network: "prod"))
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: leases.map { ($0.owner, $0.address) }), acknowledged)
    }
}
