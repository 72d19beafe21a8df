import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// The coordinator's /metrics, /healthz and /readyz on a real coordinator, read over HTTP.
final class CoordinatorMetricsTests: XCTestCase {
    var harness: CoordinatorHarness!

    override func setUp() async throws {
        harness = try await withDeadline(.seconds(30), "the coordinator's start") {
            try await CoordinatorHarness.start(metrics: true)
        }
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    private func scrape(file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let port = try XCTUnwrap(harness.metricsPort, file: file, line: line)
        let response = try await withDeadline(.seconds(10), "a scrape") {
            try await HTTPProbe.get("/metrics", port: port)
        }
        XCTAssertEqual(response.status, 200, file: file, line: line)
        return response.body
    }

    /// Leases in every state on two networks, a lost-free host, a watcher: the state the gauges must report.
    private func populate(_ admin: NetleaseConnection) async throws {
        _ = try await admin.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
        _ = try await admin.createNetwork(NetworkSpec(name: "dev", subnet: IPv4Subnet("10.77.0.0/28")!))
        let join = try await admin.join(host: "h1", underlay: IPv4Address(10, 9, 0, 1), networks: ["prod", "dev"])
        let claim = HostClaim(host: "h1", epoch: join.epoch)
        for index in 0..<5 {
            _ = try await admin.acquire(AcquireRequest(network: "prod", owner: "web-\(index)", claim: claim))
        }
        _ = try await admin.acquire(AcquireRequest(network: "dev", owner: "db", claim: claim))
        _ = try await admin.release(ReleaseRequest(network: "prod", owner: "web-0", claim: claim))
        _ = try await admin.reserve(network: "prod", address: IPv4Address(172, 30, 0, 200), note: "router")
        let doomed = try await admin.acquire(AcquireRequest(network: "dev", owner: "probe", claim: claim))
        _ = try await admin.reportConflict(
            network: "dev",
            address: doomed.address,
            mac: "02:00:00:00:00:01",
            claim: claim
        )
        do {
            _ = try await admin.acquire(AcquireRequest(network: "nowhere", owner: "x", claim: claim))
            XCTFail("an unknown network was accepted")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .unknownNetwork)
        }
    }

    func testGaugesAgreeWithStatsAndTheListingsAtTheSameMoment() async throws {
        try await harness.connect { watcher in
            _ = try await watcher.watch()
            try await self.harness.connect { admin in
                try await self.populate(admin)
                // Nothing changes between these three reads: STATS, the listings and the scrape see one state.
                let stats = try await admin.stats()
                let networks = try await admin.networks()
                // LEASE-LIST leaves cooldown records out unless asked for them.
                let leases = try await admin.leases() + admin.leases(.init(state: .cooldown))
                let metrics = try MetricsText(try await self.scrape())

                func stat(_ key: String) -> Double { Double(stats[key] ?? "") ?? -1 }
                XCTAssertEqual(metrics.sum("netlease_leases", where: ["state": "active"]), stat("leases-active"))
                XCTAssertEqual(metrics.sum("netlease_leases", where: ["state": "reserved"]), stat("leases-reserved"))
                XCTAssertEqual(metrics.sum("netlease_leases", where: ["state": "conflict"]), stat("leases-conflict"))
                XCTAssertEqual(metrics.sum("netlease_leases", where: ["state": "cooldown"]), stat("leases-cooldown"))
                XCTAssertEqual(metrics["netlease_hosts", ["state": "up"]], stat("hosts-up"))
                XCTAssertEqual(metrics["netlease_hosts", ["state": "lost"]], stat("hosts-lost"))
                XCTAssertEqual(metrics.sum("netlease_connections"), stat("connections"))
                XCTAssertEqual(metrics["netlease_connections", ["kind": "watch"]], stat("watchers"))
                XCTAssertEqual(metrics["netlease_connections", ["kind": "watch"]], 1)
                XCTAssertEqual(metrics.sum("netlease_commit_batch_size_count"), stat("store-commits"))

                XCTAssertEqual(networks.count, 2)
                for network in networks {
                    let name = network.spec.name
                    for state in LeaseState.allCases {
                        let listed = leases.filter { $0.network == name && $0.state == state }.count
                        XCTAssertEqual(
                            metrics["netlease_leases", ["network": name, "state": state.rawValue]],
                            Double(listed),
                            "\(name) \(state)"
                        )
                    }
                    let c = network.counts
                    for (kind, count) in [
                        ("free", Double(c.free)), ("leased", Double(c.active)),
                        ("reserved", Double(c.reserved)), ("cooldown", Double(c.cooldown)),
                        ("conflict", Double(c.conflict)),
                    ] {
                        XCTAssertEqual(
                            metrics["netlease_pool_addresses", ["network": name, "kind": kind]],
                            count,
                            "\(name) \(kind)"
                        )
                    }
                }
                // The bridge address of h1 in each network is an active lease too.
                XCTAssertEqual(metrics["netlease_leases", ["network": "prod", "state": "active"]], 5)
                // dev is a /28: 14 usable; h1's bridge, db and the quarantined address are taken.
                XCTAssertEqual(metrics["netlease_pool_addresses", ["network": "dev", "kind": "free"]], 14 - 3)
                XCTAssertEqual(metrics["netlease_leases", ["network": "prod", "state": "cooldown"]], 1)
            }
        }
    }

    func testRequestsAreCountedByVerbAndResultWithTheirDurations() async throws {
        try await harness.connect { admin in try await self.populate(admin) }
        let metrics = try MetricsText(try await scrape())
        XCTAssertEqual(metrics["netlease_requests_total", ["verb": "ACQUIRE", "result": "ok"]], 7)
        XCTAssertEqual(metrics["netlease_requests_total", ["verb": "ACQUIRE", "result": "unknown-network"]], 1)
        XCTAssertEqual(metrics["netlease_requests_total", ["verb": "RELEASE", "result": "ok"]], 1)
        XCTAssertEqual(metrics["netlease_requests_total", ["verb": "REPORT-CONFLICT", "result": "ok"]], 1)
        XCTAssertEqual(metrics["netlease_requests_total", ["verb": "AUTH", "result": "ok"]], 1)
        XCTAssertEqual(metrics["netlease_conflicts_total"], 1)
        XCTAssertEqual(metrics["netlease_request_duration_seconds_count", ["verb": "ACQUIRE"]], 8)
        XCTAssertEqual(metrics["netlease_request_duration_seconds_bucket", ["verb": "ACQUIRE", "le": "+Inf"]], 8)
        XCTAssertGreaterThan(metrics["netlease_request_duration_seconds_sum", ["verb": "ACQUIRE"]] ?? 0, 0)
        XCTAssertNil(
            metrics["netlease_requests_total", ["verb": "BACKUP", "result": "ok"]],
            "a series appears only once it counted something"
        )
        XCTAssertGreaterThan(metrics.sum("netlease_commit_duration_seconds_count"), 0)
    }

    func testLinesThatDoNotParseAreCountedUnderTheirVerbOrUnknown() async throws {
        let port = harness.endpoint.port
        let secret = try XCTUnwrap(harness.secret?.text)
        let replies = try await withDeadline(.seconds(10), "raw lines") {
            let client = try RawLineClient(port: port)
            _ = try client.readLine()  // greeting
            try client.send("AUTH secret=\(secret)\nacquire network=\nFROB x=1\n")
            return try client.readLines(3)
        }
        XCTAssertEqual(replies.count, 3)
        let metrics = try MetricsText(try await scrape())
        XCTAssertEqual(metrics["netlease_requests_total", ["verb": "ACQUIRE", "result": "bad-request"]], 1)
        XCTAssertEqual(metrics["netlease_requests_total", ["verb": "unknown", "result": "bad-request"]], 1)
    }

    func testTheScrapePassesPromtool() async throws {
        let promtool = try requirePromtool()
        try await harness.connect { admin in try await self.populate(admin) }
        let text = try await scrape()
        XCTAssertNil(try PrometheusTools.checkMetrics(text, promtool: promtool), text)
    }

    func testHealthIsOkAndReadinessFollowsServing() async throws {
        let port = try XCTUnwrap(harness.metricsPort)
        let (health, ready) = try await withDeadline(.seconds(10), "health and readiness") {
            (try await HTTPProbe.get("/healthz", port: port), try await HTTPProbe.get("/readyz", port: port))
        }
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(ready.status, 200, ready.body)
        // A coordinator that is not running is not ready, and says why.
        let idle = Coordinator(configuration: CoordinatorConfiguration(secret: nil), store: harness.store)
        let readiness = await idle.readiness()
        XCTAssertEqual(readiness.unmet, ["coordinator: not accepting connections (starting or stopping)"])
    }

    func testReclaimsAreCounted() async throws {
        let clock = ManualLeaseClock()
        let reclaiming = try CoordinatorHarness(secret: nil, clock: clock)
        defer { try? FileManager.default.removeItem(at: reclaiming.directory) }
        _ = try await reclaiming.store.createNetwork(
            NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, leaseTTL: 30)
        )
        _ = try await reclaiming.store.join(host: "h1", underlay: IPv4Address(10, 9, 0, 1), networks: ["prod"])
        clock.advance(seconds: 31)
        await Reclaimer(store: reclaiming.store, metrics: reclaiming.metrics).reclaimOnce()
        let snapshot = CoordinatorSnapshot(networks: [], hosts: [], connections: 0, watchers: 0)
        let metrics = try MetricsText(reclaiming.metrics.exposition(snapshot))
        XCTAssertEqual(metrics["netlease_reclaims_total"], 1)
        reclaiming.store.close()
    }
}

/// The path of promtool; skips the test without it, or fails it when NETLEASE_REQUIRE_NETNS=1.
func requirePromtool(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    if let path = PrometheusTools.find("promtool") { return path }
    let message = "promtool not found: install the Debian package '\(PrometheusTools.package)'"
    if PrometheusTools.required { XCTFail("NETLEASE_REQUIRE_NETNS=1 but \(message)", file: file, line: line) }
    throw XCTSkip(message)
}
