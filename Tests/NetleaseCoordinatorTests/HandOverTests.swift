import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// ACQUIRE with `from` against a real coordinator: answered after its commit, kept across a restart, idempotent.
final class CoordinatorHandOverTests: XCTestCase {
    func testAPooledAddressIsHandedToItsContainerDurably() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-handover-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        var harness = try await CoordinatorHarness.start(directory: directory)
        let (pooled, given, again) = try await harness.connect { c -> (Lease, Lease, Lease) in
            _ = try await c.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
            let join = try await c.join(host: "h1", underlay: IPv4Address(10, 1, 0, 1))
            let claim = HostClaim(host: "h1", epoch: join.epoch)
            let pooled = try await c.acquire(AcquireRequest(network: "prod", owner: "pool:h1:1", claim: claim))
            let handOver = AcquireRequest(
                network: "prod",
                owner: "web",
                claim: claim,
                address: pooled.address,
                ifname: "eth0",
                from: "pool:h1:1"
            )
            return (pooled, try await c.acquire(handOver), try await c.acquire(handOver))
        }
        XCTAssertEqual(given.address, pooled.address)
        XCTAssertEqual(given.owner, "web")
        XCTAssertEqual(again, given)
        let port = harness.endpoint.port
        await harness.stop(removeFiles: false)
        harness = try await CoordinatorHarness.start(directory: directory, port: port)
        let after = try await harness.connect { try await $0.leases(.init(network: "prod", host: "h1")) }
        XCTAssertEqual(after.filter { !$0.isBridge }.map(\.owner), ["web"])
        XCTAssertEqual(after.filter { !$0.isBridge }.map(\.address), [pooled.address])
        await harness.stop()
    }
}
