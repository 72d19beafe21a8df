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

    /// Every verb of the store, each called once through `gate` (arguments that a serving store would accept).
    private func everyVerb(of gate: LeadershipGate) -> [(String, () async throws -> Void)] {
        let address = IPv4Address(10, 1, 0, 7)
        let claim = HostClaim(host: "h1", epoch: 1)
        let spec = NetworkSpec(name: "prod", subnet: IPv4Subnet("10.1.0.0/24")!)
        return [
            ("createNetwork", { _ = try await gate.createNetwork(spec) }),
            ("deleteNetwork", { try await gate.deleteNetwork("prod") }),
            ("networks", { _ = try await gate.networks() }),
            ("network", { _ = try await gate.network("prod") }),
            ("join", { _ = try await gate.join(host: "h1", underlay: IPv4Address(192, 0, 2, 1), networks: ["prod"]) }),
            ("hosts", { _ = try await gate.hosts() }),
            ("removeHost", { _ = try await gate.removeHost("h1") }),
            (
                "acquire",
                { _ = try await gate.acquire(network: "prod", owner: "a", claim: nil, address: nil, ifname: "") }
            ),
            ("release", { _ = try await gate.release(network: "prod", owner: "a", address: nil, claim: nil) }),
            ("heartbeat", { _ = try await gate.heartbeat(host: "h1", epoch: 1) }),
            ("reserve", { _ = try await gate.reserve(network: "prod", address: address, note: "") }),
            ("unreserve", { try await gate.unreserve(network: "prod", address: address) }),
            (
                "reportConflict",
                {
                    _ = try await gate.reportConflict(
                        network: "prod",
                        address: address,
                        mac: "02:00:00:00:00:01",
                        claim: claim
                    )
                }
            ),
            ("leases", { _ = try await gate.leases(.init()) }),
            (
                "reconcile",
                {
                    _ = try await gate.reconcile(
                        network: "prod",
                        owner: "a",
                        address: address,
                        ifname: "",
                        claim: claim
                    )
                }
            ),
            (
                "handOver",
                {
                    _ = try await gate.handOver(
                        network: "prod",
                        address: address,
                        from: "a",
                        owner: "b",
                        ifname: "",
                        claim: claim
                    )
                }
            ),
            ("reclaim", { _ = try await gate.reclaim() }),
        ]
    }

    func testEveryVerbIsRefusedByAStandbyAndPastTheLeaseWithoutReachingTheStore() async throws {
        let gate = LeadershipGate()
        gate.observed(leader: "10.0.0.9:7420", term: 4)
        for (verb, call) in everyVerb(of: gate) {
            await expectNotLeader(gate, naming: "10.0.0.9:7420", "a standby's \(verb)", call)
        }

        // Leading, but the lease already ended: the store of the term holds it, and nothing reaches it.
        let store = try SQLiteLeaseStore(directory: directory.path)
        defer { store.close() }
        gate.lead(store, term: 5, leader: "10.0.0.1:7420", until: .now)
        for (verb, call) in everyVerb(of: gate) {
            await expectNotLeader(gate, naming: "", "\(verb) past the lease", call)
        }
        XCTAssertEqual(store.statistics().operations, 0, "no operation reached the store")
        XCTAssertEqual(store.identity().generation, 0)
    }
}
