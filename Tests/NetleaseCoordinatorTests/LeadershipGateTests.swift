import Foundation
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import XCTest

@testable import NetleaseCoordinator

/// The gate a coordinator on a shared database serves from: nothing while standing by or past its lease, the
/// store of its term while leading.
final class LeadershipGateTests: XCTestCase {
    private var directory: URL!

    override func setUp() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("netlease-gate-\(UUID().uuidString)")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    private func expectNotLeader<T>(
        _ gate: LeadershipGate,
        naming leader: String,
        _ what: String,
        _ body: () async throws -> T
    ) async {
        do {
            _ = try await body()
            XCTFail("\(what) was answered")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .notLeader, "\(what): \(error)")
            XCTAssertTrue(error.message.hasPrefix("leader=\(leader) "), "\(what): \(error.message)")
        } catch {
            XCTFail("\(what): \(error)")
        }
    }

    func testServesOnlyWhileLeadingWithinItsLease() async throws {
        let gate = LeadershipGate()
        XCTAssertEqual(gate.leadershipStatus(), LeadershipStatus(role: .standby, serving: false, leader: "", term: 0))
        gate.observed(leader: "10.0.0.9:7420", term: 4)
        await expectNotLeader(gate, naming: "10.0.0.9:7420", "a standby's listing") { try await gate.networks() }
        await expectNotLeader(gate, naming: "10.0.0.9:7420", "a standby's acquire") {
            try await gate.acquire(network: "prod", owner: "x", claim: nil, address: nil, ifname: "")
        }
        await expectNotLeader(gate, naming: "10.0.0.9:7420", "a standby's reclaim") { try await gate.reclaim() }

        let store = try SQLiteLeaseStore(directory: directory.path)
        gate.lead(store, term: 5, leader: "10.0.0.1:7420", until: .now + .milliseconds(300))
        XCTAssertEqual(
            gate.leadershipStatus(),
            LeadershipStatus(
                role: .leader,
                serving: true,
                leader: "10.0.0.1:7420",
                term: 5
            )
        )
        _ = try await gate.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("10.1.0.0/24")!))
        let lease = try await gate.acquire(network: "prod", owner: "a", claim: nil, address: nil, ifname: "")
        XCTAssertEqual(gate.identity(), store.identity())

        // Past the lease: nothing, not even listings from memory; a renewal brings it back.
        try await Task.sleep(for: .milliseconds(350))
        XCTAssertEqual(gate.leadershipStatus()?.serving, false)
        XCTAssertTrue(gate.isLeading)
        await expectNotLeader(gate, naming: "", "a listing past the lease") { try await gate.leases(.init()) }
        await expectNotLeader(gate, naming: "", "an acquire past the lease") {
            try await gate.acquire(network: "prod", owner: "b", claim: nil, address: nil, ifname: "")
        }
        gate.extend(until: .now + .seconds(5))
        let listed = try await gate.leases(.init(network: "prod"))
        XCTAssertEqual(listed, [lease])

        // Deposed: the store of the term is handed back for closing; the identity stays for replies.
        let identity = gate.identity()
        let ended = gate.follow(leader: "10.0.0.2:7420", term: 6)
        XCTAssertTrue((ended as? SQLiteLeaseStore) === store)
        ended?.close()
        XCTAssertFalse(gate.isLeading)
        XCTAssertEqual(gate.identity(), identity)
        await expectNotLeader(gate, naming: "10.0.0.2:7420", "a deposed leader's listing") {
            try await gate.networks()
        }
        gate.extend(until: .now + .seconds(5))
        XCTAssertEqual(gate.leadershipStatus()?.serving, false, "a renewal cannot revive a deposed leader")
    }
}
