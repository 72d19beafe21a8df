import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// A network that hosts serve is not deleted under them: their bridges keep their addresses (the containers'
/// gateways), and a network created again over the same addresses must never hand one of those to a container.
final class NetworkDeleteTests: XCTestCase {
    var harness: CoordinatorHarness!

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    private let spec = NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/29")!, cooldown: 0)

    /// Takes every address the network hands out.
    private func drain(_ c: NetleaseConnection, tag: String) async throws -> [IPv4Address] {
        var handed: [IPv4Address] = []
        while true {
            do {
                handed.append(
                    try await c.acquire(AcquireRequest(network: "prod", owner: "\(tag)-\(handed.count)")).address
                )
            } catch let error as NetleaseError where error.code == .poolExhausted {
                return handed
            }
        }
    }

    func testARecreatedNetworkNeverHandsAServingHostsBridgeAddressToAContainer() async throws {
        harness = try await CoordinatorHarness.start()
        let spec = self.spec
        try await harness.connect { c in
            _ = try await c.createNetwork(spec)
            let joined = try await c.join(host: "h1", underlay: IPv4Address("10.0.0.1")!, networks: ["prod"])
            let bridge = try XCTUnwrap(joined.bridges.first).address
            do {
                try await c.deleteNetwork("prod")
                _ = try await c.createNetwork(spec)
                XCTFail("a network that host h1 serves was deleted")
            } catch let error as NetleaseError where error.code == .conflict {
                XCTAssertTrue(error.message.contains("h1 (up)"), error.message)
            }
            let handed = try await drain(c, tag: "c")
            XCTAssertFalse(handed.contains(bridge), "h1's bridge address \(bridge) was handed to a container")
        }
    }

    /// A lost host may only be cut off, its agent still serving: it blocks the delete too, until it is removed.
    /// Then the network goes, and the one created again gives the returning host a bridge address no container has.
    func testALostHostBlocksTheDeleteUntilRemovedAndTheRecreatedNetworkStaysApart() async throws {
        let clock = ManualLeaseClock()
        harness = try await CoordinatorHarness.start(clock: clock)
        let spec = self.spec
        try await harness.connect { c in
            _ = try await c.createNetwork(spec)
            _ = try await c.join(host: "h1", underlay: IPv4Address("10.0.0.1")!, networks: ["prod"])
        }
        clock.advance(seconds: Double(spec.leaseTTL + 1))
        _ = try await harness.store.reclaim()
        try await harness.connect { c in
            let hosts = try await c.hosts()
            XCTAssertEqual(hosts.first { $0.name == "h1" }?.state, .lost)
            do {
                try await c.deleteNetwork("prod")
                XCTFail("a network that lost host h1 served was deleted")
            } catch let error as NetleaseError where error.code == .conflict {
                XCTAssertTrue(error.message.contains("h1 (lost)"), error.message)
            }
            _ = try await c.removeHost("h1")
            try await c.deleteNetwork("prod")
            _ = try await c.createNetwork(spec)
            let joined = try await c.join(host: "h1", underlay: IPv4Address("10.0.0.1")!, networks: ["prod"])
            let bridge = try XCTUnwrap(joined.bridges.first).address
            let handed = try await drain(c, tag: "c")
            XCTAssertFalse(handed.contains(bridge))
            XCTAssertEqual(handed.count + 1, Int(spec.usableCount))
        }
    }
}
