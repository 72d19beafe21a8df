import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import XCTest

@testable import NetleaseAgent

/// Releases Docker asked for while the coordinator was out of reach, finished later by the agent's Docker backend,
/// against a real coordinator: a deferred release never takes the lease of an endpoint that leased again since (a
/// container restarted with the same MAC).
final class DockerDeferredReleaseTests: AgentTestCase {
    private let owner = "docker/02:42:ac:1e:00:05"

    private func start(poolSize: Int) async throws -> (AgentHarness, DockerAgentBackend) {
        let harness = try await startAgent(poolSize: poolSize)
        let agent = harness.agent
        let backlog = try DockerReleaseBacklog(directory: agent.configuration.stateDirectory, files: agent.files)
        return (harness, DockerAgentBackend(agent: agent, backlog: backlog))
    }

    private func deferred(_ backend: DockerAgentBackend) throws {
        try backend.backlog.add(.init(network: "prod", owner: owner, address: "172.30.0.250"))
    }

    /// Polls `condition` every 10 ms; fails the test after the default deadline.
    private func waitFor(_ what: String, _ condition: @escaping @Sendable () -> Bool) async throws {
        try await withDeadline(what) {
            while !condition() { try await Task.sleep(for: .milliseconds(10)) }
        }
    }

    func testAnAcquireOfTheEndpointDropsItsDeferredRelease() async throws {
        let (_, backend) = try await start(poolSize: 0)
        try deferred(backend)
        let address = try await backend.dockerAcquire(network: "prod", owner: owner, address: nil)
        XCTAssertEqual(backend.backlog.all, [], "the deferred release of an endpoint that leased again is still due")
        await backend.finishDeferredReleases()
        let coordinator = try XCTUnwrap(self.coordinator)
        let owner = self.owner
        let held = try await withDeadline("listing the endpoint's lease") {
            try await coordinator.connect { try await $0.leases(.init(network: "prod", owner: owner)) }
        }
        XCTAssertEqual(held.map(\.address), [address])
    }

    /// The deferred release of an endpoint is due while a request of the same endpoint waits for a pool fill (it
    /// holds the owner's lock): the release waits for the request and then finds the new lease, which it keeps.
    func testADeferredReleaseWaitingBehindTheEndpointsRequestLeavesItsNewLease() async throws {
        let (harness, backend) = try await start(poolSize: 1)
        let agent = harness.agent
        // The pooled address goes to another endpoint; its replacement's full probe is held.
        harness.prober.hold(ARPProbeOptions())
        _ = try await backend.dockerAcquire(network: "prod", owner: "docker/02:42:ac:1e:00:09", address: nil)
        try await waitFor("the pool's refill probing") { harness.prober.heldCount == 1 }
        try deferred(backend)

        let owner = self.owner
        let request = Task { try await backend.dockerAcquire(network: "prod", owner: owner, address: nil) }
        defer { request.cancel() }
        try await waitFor("the request waiting for the fill") { agent.poolStatus(of: "prod").waiting == 1 }
        let finishing = Task { await backend.finishDeferredReleases() }
        let key = LocalLease.key(network: "prod", owner: owner)
        try await waitFor("the deferred release waiting for the request") {
            agent.ownerLocks.waiting(for: key) == 1
        }
        harness.prober.release()
        let address = try await withDeadline("the endpoint's request") { try await request.value }
        try await withDeadline("the deferred releases") { await finishing.value }

        let coordinator = try XCTUnwrap(self.coordinator)
        let held = try await withDeadline("listing the endpoint's lease") {
            try await coordinator.connect { try await $0.leases(.init(network: "prod", owner: owner)) }
        }
        XCTAssertEqual(held.map(\.address), [address], "the deferred release took the restarted endpoint's lease")
        XCTAssertEqual(agent.leases.lease(network: "prod", owner: owner)?.ipv4, address)
        XCTAssertEqual(backend.backlog.all, [])
    }
}
