import Foundation
import HostNetwork
import NetleaseAgent
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// Agents follow their networks' definitions, not only the peers: a deleted network is no longer leased in, a
/// changed one is built again with its new settings. The events come from the coordinator's hub, as the coordinator
/// sends them (one created or deleted by an admin, or by a coordinator that let the delete through).
final class NetworkEventTests: XCTestCase {
    var coordinator: CoordinatorHarness!
    var harness: AgentHarness?

    override func setUp() async throws {
        let coordinator = try await withDeadline("the coordinator's start") { try await CoordinatorHarness.start() }
        self.coordinator = coordinator
        try await withDeadline("creating the network") {
            try await coordinator.connect { c in
                _ = try await c.createNetwork(
                    NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, vni: 77, cooldown: 0)
                )
            }
        }
    }

    override func tearDown() async throws {
        if let harness {
            await harness.stop()
            harness.removeFiles()
        }
        if let coordinator { try await withDeadline("the coordinator's stop") { await coordinator.stop() } }
    }

    private func startAgent() async throws -> AgentHarness {
        let harness = try AgentHarness(coordinator: coordinator)
        self.harness = harness
        harness.start()
        _ = try await harness.waitUntilReady()
        return harness
    }

    private static func acquire(_ harness: AgentHarness, _ owner: String) async throws -> Result<Lease, NetleaseError> {
        do {
            let reply = try await harness.local {
                try await $0.send(LocalRequest.acquire(network: "prod", owner: owner, ifname: "eth0"))
            }
            return .success(try WireCodec.lease(from: reply.fields))
        } catch let error as NetleaseError {
            return .failure(error)
        }
    }

    func testAnAgentStopsLeasingInANetworkDeletedAtTheCoordinator() async throws {
        let harness = try await startAgent()
        guard case .success = try await Self.acquire(harness, "before") else {
            return XCTFail("the agent did not lease before the delete")
        }
        coordinator.events.publish(.networkDeleted("prod"))
        // The agent applies events in order, right after they arrive: asked until it refuses, within the deadline.
        let refusal = try await withDeadline("the agent's refusal to lease in the deleted network") {
            var attempt = 0
            while true {
                attempt += 1
                if case .failure(let error) = try await Self.acquire(harness, "after-\(attempt)") { return error }
            }
        }
        XCTAssertEqual(refusal.code, .unknownNetwork, "\(refusal)")
        XCTAssertTrue(refusal.message.contains("does not serve network 'prod'"), refusal.message)
        // Still connected (heartbeats go on): only the deleted network is no longer served.
        let hosts = try await coordinator.connect { try await $0.hosts() }
        XCTAssertEqual(hosts.first { $0.name == "h1" }?.state, .up)
    }

    func testAnAgentJoinsAgainWhenANetworkItServesChangesItsSettings() async throws {
        let harness = try await startAgent()
        // The first build, already done: the call after the event is the next one.
        _ = try await harness.network.nextCall("the first build") { call -> Bool? in
            if case .ensureNetwork = call { return true }
            return nil
        }
        let joined = try await coordinator.connect { try await $0.hosts() }.first { $0.name == "h1" }
        let before = try XCTUnwrap(joined?.epoch)
        var changed = try await coordinator.connect { try await $0.network("prod").spec }
        changed.mtu = 1300
        coordinator.events.publish(.network(changed))
        // It joins again (a new epoch) and builds the network once more.
        let rebuilt = try await harness.network.nextCall("the network built again") { call -> String? in
            if case .ensureNetwork(let config) = call { return config.bridge }
            return nil
        }
        XCTAssertEqual(rebuilt, "nl-prod")
        let after = try await coordinator.connect { try await $0.hosts() }.first { $0.name == "h1" }
        XCTAssertGreaterThan(after?.epoch ?? 0, before)
    }
}
