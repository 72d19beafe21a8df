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

    // MARK: an owner the coordinator refuses for its own reasons does not cost the pool

    func testARequestForAnOwnerActiveOnAnotherHostFailsAndLeavesThePoolAsItWas() async throws {
        let harness = try await startAgent(poolSize: 3)
        XCTAssertEqual(harness.agent.poolStatus(of: "prod").pooled, 3)
        let pooledHere = Set(harness.agent.leases.all.filter { $0.state == .pooled }.map(\.address))
        let pooledThere = try await leases(.init(network: "prod", host: "h1", state: .active))
            .filter { $0.owner.hasPrefix("pool:") }
        XCTAssertEqual(Set(pooledThere.map(\.address.description)), pooledHere)
        let coordinator = try XCTUnwrap(self.coordinator)
        let elsewhere = try await withDeadline("x leased on h2") {
            try await coordinator.connect { c in
                let h2 = try await c.join(host: "h2", underlay: IPv4Address(10, 9, 0, 2))
                return try await c.acquire(
                    AcquireRequest(network: "prod", owner: "x", claim: HostClaim(host: "h2", epoch: h2.epoch))
                )
            }
        }

        let error = try await refusal(harness, .acquire(network: "prod", owner: "x", ifname: "eth0"))
        XCTAssertEqual(error.code, .conflict, error.message)
        XCTAssertTrue(error.message.contains("'h2'"), error.message)
        XCTAssertEqual(
            Set(harness.agent.leases.all.filter { $0.state == .pooled }.map(\.address)),
            pooledHere,
            "pooled addresses left the pool"
        )
        XCTAssertNil(harness.agent.leases.lease(network: "prod", owner: "x"), "a record of the refused request stayed")
        let poolNow = try await leases(.init(network: "prod", host: "h1", state: .active))
            .filter { $0.owner.hasPrefix("pool:") }
        // Heartbeats renew leases meanwhile: who holds what is compared, not when it was renewed.
        XCTAssertEqual(poolNow.map(\.holding), pooledThere.map(\.holding), "the coordinator's pool leases changed")
        let x = try await leases(.init(network: "prod", owner: "x"))
        XCTAssertEqual(x.map(\.holding), [elsewhere.holding])
    }

    /// An owner this host holds at the coordinator without a local record (a Docker endpoint whose release is still
    /// deferred, a lost state directory) gets that address back, as without a pool, and the pool stays whole.
    func testAnOwnerThisHostHoldsWithoutARecordGetsItsAddressAndThePoolStaysWhole() async throws {
        let harness = try await startAgent(poolSize: 2)
        let pooledHere = Set(harness.agent.leases.all.filter { $0.state == .pooled }.map(\.address))
        XCTAssertEqual(pooledHere.count, 2)
        let coordinator = try XCTUnwrap(self.coordinator)
        let held = try await withDeadline("y leased for h1") {
            try await coordinator.connect { c in
                try await c.acquire(AcquireRequest(network: "prod", owner: "y", claim: HostClaim(host: "h1")))
            }
        }

        let given = try await send(harness, .acquire(network: "prod", owner: "y", ifname: "eth0"))
        XCTAssertEqual(given.address, held.address)
        XCTAssertEqual(
            Set(harness.agent.leases.all.filter { $0.state == .pooled }.map(\.address)),
            pooledHere,
            "pooled addresses left the pool"
        )
        XCTAssertEqual(harness.agent.leases.lease(network: "prod", owner: "y")?.state, .ready)
    }

    // MARK: the coordinator's owner rules, applied before anything is looked up

    func testAnOwnerInAnotherNormalFormIsRefusedBeforeItFindsTheRecordOfTheComposedOne() async throws {
        let harness = try await startAgent()
        let composed = "caf\u{E9}"
        let held = try await send(harness, .attach(network: "prod", owner: composed, netns: "ctr-cafe", ifname: "eth0"))
        let record = harness.agent.leases.lease(network: "prod", owner: composed)
        XCTAssertNotNil(record)
        let attaches = plumbingCalls(harness)

        for request in [
            LocalRequest.detach(network: "prod", owner: "cafe\u{301}"),
            .release(network: "prod", owner: "cafe\u{301}"),
            .acquire(network: "prod", owner: "cafe\u{301}", ifname: "eth0"),
            .attach(network: "prod", owner: "cafe\u{301}", netns: "ctr-cafe", ifname: "eth0"),
        ] {
            let error = try await refusal(harness, request)
            XCTAssertEqual(error.code, .badRequest, "\(request): \(error.message)")
            XCTAssertTrue(error.message.contains("NFC"), error.message)
        }
        XCTAssertEqual(plumbingCalls(harness), attaches, "café's container was unplumbed or plumbed again")
        XCTAssertEqual(harness.agent.leases.lease(network: "prod", owner: composed), record)
        let now = try await leases(.init(network: "prod", owner: composed))
        XCTAssertEqual(now.map(\.address), [held.address])

        let bridge = try await refusal(harness, .acquire(network: "prod", owner: "bridge:h1", ifname: "eth0"))
        XCTAssertEqual(bridge.code, .badRequest, bridge.message)
        XCTAssertTrue(bridge.message.contains("bridge:"), bridge.message)
    }
}

extension Lease {
    /// Who holds which address, and how: what a test compares while heartbeats renew the lease.
    fileprivate var holding: String { "\(network) \(address) \(state) host=\(host) owner=\(owner)" }
}
