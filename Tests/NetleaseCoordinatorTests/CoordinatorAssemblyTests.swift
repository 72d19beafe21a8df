import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// The whole assembly (`Coordinator`: server, reclaimer, trimmer) as the harness and the CLI run it.
final class CoordinatorAssemblyTests: XCTestCase {
    var harness: CoordinatorHarness!
    let clock = ManualLeaseClock()

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    /// Nothing in this test calls the reclaimer: the assembly's own must notice the missed heartbeats.
    func testAssemblyReclaimsAHostThatMissedHeartbeatsForItsTTL() async throws {
        harness = try await CoordinatorHarness.start(clock: clock, reclaimInterval: .milliseconds(20))
        let lease = try await harness.connect { c in
            _ = try await c.createNetwork(
                NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, leaseTTL: 3, cooldown: 60)
            )
            let join = try await c.join(host: "h1", underlay: IPv4Address(10, 1, 0, 1), networks: ["prod"])
            return try await c.acquire(
                AcquireRequest(network: "prod", owner: "web", claim: HostClaim(host: "h1", epoch: join.epoch))
            )
        }
        try await harness.connect { watcher in
            let (hosts, events) = try await watcher.watch()
            XCTAssertEqual(hosts.map(\.state), [.up])

            clock.advance(seconds: 3.5)
            let lost = try await withDeadline(.seconds(10), "the reclaimer announcing h1 lost") {
                for await event in events {
                    if case .host(let host) = event, host.name == "h1", host.state == .lost { return host }
                }
                throw NetleaseError(.unavailable, "the watch ended before h1 was lost")
            }
            XCTAssertEqual(lost.state, .lost)
        }
        try await harness.connect { c in
            let hosts = try await c.hosts()
            XCTAssertEqual(hosts.first { $0.name == "h1" }?.state, .lost)
            let cooling = try await c.leases(.init(network: "prod", state: .cooldown))
            XCTAssertEqual(
                cooling.first { $0.address == lease.address }?.state,
                .cooldown,
                "the lost host's lease must wait out its cooldown"
            )
            let active = try await c.leases(.init(network: "prod", state: .active))
            XCTAssertNil(active.first { $0.owner == "web" }, "the lost host's lease is still active")
        }
    }

    func testGracefulShutdownStopsServerReclaimerAndTrimmer() async throws {
        harness = try await CoordinatorHarness.start(clock: clock, reclaimInterval: .milliseconds(20))
        let endpoint = harness.endpoint
        let stopping = harness!
        harness = nil
        // `stop` returns only once every service of the assembly has returned.
        try await withDeadline(.seconds(10), "graceful shutdown") { await stopping.stop() }
        do {
            try await NetleaseConnection.connect(to: endpoint) { try await $0.ping() }
            XCTFail("the server still accepts connections after shutdown")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .unavailable)
        }
    }

    func testHarnessReportsACoordinatorThatCannotListen() async throws {
        harness = try await CoordinatorHarness.start()
        let port = harness.endpoint.port
        func harnessDirectories() throws -> Set<String> {
            Set(
                try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
                    .filter { $0.hasPrefix("netlease-test-") }
            )
        }
        let before = try harnessDirectories()
        defer { XCTAssertEqual(try? harnessDirectories(), before, "a failed start left its data directory behind") }
        do {
            let second = try await withDeadline(.seconds(10), "starting on a taken port") {
                try await CoordinatorHarness.start(port: port)
            }
            await second.stop()
            XCTFail("a second coordinator listened on a taken port")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .unavailable)
            XCTAssertTrue(error.message.contains("cannot listen"), error.message)
        }
    }
}
