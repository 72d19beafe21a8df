import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

@testable import NetleaseAgent

/// Local requests whose owner means something other than it looks, one case per section. A refused request changes
/// nothing: no veth, no probe, no lease, no pooled address lost.
final class LocalOwnerTests: AgentTestCase {
    private func leases(_ filter: Ledger.LeaseFilter) async throws -> [Lease] {
        let coordinator = try XCTUnwrap(self.coordinator)
        return try await withDeadline("listing leases") {
            try await coordinator.connect { try await $0.leases(filter) }
        }
    }

    private func send(_ harness: AgentHarness, _ request: LocalRequest) async throws -> Lease {
        try WireCodec.lease(from: try await harness.local { try await $0.send(request) }.fields)
    }

    /// The error `request` is refused with; fails the test when it succeeds.
    private func refusal(
        _ harness: AgentHarness,
        _ request: LocalRequest,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws -> NetleaseError {
        do {
            _ = try await harness.local { try await $0.send(request) }
        } catch let error as NetleaseError {
            return error
        }
        XCTFail("\(request) succeeded", file: file, line: line)
        throw NetleaseError(.internalError, "not refused")
    }

    private func plumbingCalls(_ harness: AgentHarness) -> [RecordingHostNetwork.Call] {
        harness.network.recorder.calls.filter {
            switch $0 {
            case .attach, .detach: return true
            default: return false
            }
        }
    }

    // MARK: the kind of request must match the owner's record

    func testAnAttachOfAnOwnerARuntimeHoldsIsRefusedWithoutPlumbingItsAddress() async throws {
        let harness = try await startAgent()
        let owner = "docker/02:42:ac:1e:00:05"
        // What Docker's IPAM plugin does for an endpoint.
        let held = try await harness.agent.acquire(network: "prod", owner: owner, ifname: "").lease
        let record = harness.agent.leases.lease(network: "prod", owner: owner)
        let probes = harness.prober.probes

        let error = try await refusal(harness, .attach(network: "prod", owner: owner, netns: "ctr-x", ifname: "eth0"))
        XCTAssertEqual(error.code, .conflict, error.message)
        XCTAssertTrue(error.message.contains("'\(owner)'"), error.message)
        XCTAssertTrue(error.message.contains("ACQUIRE"), error.message)
        XCTAssertEqual(plumbingCalls(harness), [], "the runtime's live address was plumbed into another namespace")
        XCTAssertEqual(harness.prober.probes, probes)
        XCTAssertEqual(harness.agent.leases.lease(network: "prod", owner: owner), record)
        let now = try await leases(.init(network: "prod", owner: owner))
        XCTAssertEqual(now.map(\.address), [held.address])
    }

    func testAnAcquireOfAnAttachedContainersOwnerIsRefusedWithoutHandingOutItsAddress() async throws {
        let harness = try await startAgent()
        let held = try await send(harness, .attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
        let record = harness.agent.leases.lease(network: "prod", owner: "web")
        XCTAssertEqual(record?.netns, "ctr-web")
        let probes = harness.prober.probes

        let error = try await refusal(harness, .acquire(network: "prod", owner: "web", ifname: "eth0"))
        XCTAssertEqual(error.code, .conflict, error.message)
        XCTAssertTrue(error.message.contains("'web'") && error.message.contains("ctr-web"), error.message)
        XCTAssertEqual(harness.prober.probes, probes)
        XCTAssertEqual(harness.agent.leases.lease(network: "prod", owner: "web"), record)
        let now = try await leases(.init(network: "prod", owner: "web"))
        XCTAssertEqual(now.map(\.address), [held.address])

        // The attached container's own repeat still works, and so does its detach.
        let again = try await send(harness, .attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
        XCTAssertEqual(again.address, held.address)
    }
}
