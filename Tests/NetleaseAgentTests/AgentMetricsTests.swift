import Foundation
import HostNetwork
import Logging
import NetleaseAgent
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import ServiceLifecycle
import XCTest

/// The agent's /metrics, /healthz and /readyz, served beside an agent on the recording host network.
final class AgentMetricsTests: XCTestCase {
    var coordinator: CoordinatorHarness!
    var harness: AgentHarness?
    private var endpoint: ServiceGroup?
    private var endpointRun: Task<Void, Error>?

    override func setUp() async throws {
        coordinator = try await withDeadline("the coordinator's start") { try await CoordinatorHarness.start() }
        let coordinator = try XCTUnwrap(self.coordinator)
        _ = try await withDeadline("creating the network") {
            try await coordinator.connect { c in
                try await c.createNetwork(
                    NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, vni: 77, cooldown: 0)
                )
            }
        }
    }

    override func tearDown() async throws {
        await endpoint?.triggerGracefulShutdown()
        if let endpointRun { _ = try? await withDeadline("the endpoint's stop") { try await endpointRun.value } }
        if let harness {
            await harness.stop()
            harness.removeFiles()
        }
        if let coordinator { try await withDeadline("the coordinator's stop") { await coordinator.stop() } }
    }

    /// Serves `agent`'s endpoint on 127.0.0.1, port 0; returns the port.
    private func serveMetrics(of agent: Agent) async throws -> Int {
        let (ports, sink) = AsyncStream.makeStream(of: Int.self)
        let server = agent.metricsServer(address: .tcp(host: "127.0.0.1", port: 0)) { address in
            sink.yield(address.port ?? 0)
            sink.finish()
        }
        var logger = Logger(label: "test.agent.metrics")
        logger.logLevel = .critical
        let group = ServiceGroup(services: [server], logger: logger)
        endpoint = group
        endpointRun = Task {
            defer { sink.finish() }
            try await group.run()
        }
        return try await withDeadline("the metrics endpoint's start") {
            for await port in ports { return port }
            throw NetleaseError(.unavailable, "the metrics endpoint stopped before it listened")
        }
    }

    private func get(_ path: String, port: Int) async throws -> HTTPProbe.Response {
        try await withDeadline("GET \(path)") { try await HTTPProbe.get(path, port: port) }
    }

    func testReadyzIs503UntilTheNetworkIsVerifiedAndTheLocalAPIOpensThen200() async throws {
        let harness = try AgentHarness(coordinator: coordinator)
        self.harness = harness
        harness.network.recorder.setVerifyFailures([VerifyFailure(check: .bridgeUp, detail: "bridge is down")])
        let port = try await serveMetrics(of: harness.agent)

        let beforeStart = try await get("/readyz", port: port)
        XCTAssertEqual(beforeStart.status, 503)
        XCTAssertTrue(beforeStart.body.contains("not ready: network(s) prod not verified"), beforeStart.body)
        XCTAssertTrue(
            beforeStart.body.contains("not ready: local API \(harness.socketPath) not open"),
            beforeStart.body
        )
        let health = try await get("/healthz", port: port)
        XCTAssertEqual(health.status, 200, "alive before it is ready")

        harness.start()
        try await harness.network.nextCall("a failed verification") { call -> Void? in
            if case .verify = call { return () }
            return nil
        }
        let failing = try await get("/readyz", port: port)
        XCTAssertEqual(failing.status, 503, "the network fails verification: \(failing.body)")
        XCTAssertTrue(failing.body.contains("prod not verified"), failing.body)

        harness.network.recorder.setVerifyFailures([])
        _ = try await harness.waitUntilReady()
        let ready = try await get("/readyz", port: port)
        XCTAssertEqual(ready.status, 200, ready.body)
        XCTAssertEqual(ready.body, "ready\n")
    }

    func testHandoutsProbesPeersAndTheSessionAreCountedAndTheScrapePassesPromtool() async throws {
        let harness = try AgentHarness(coordinator: coordinator)
        self.harness = harness
        let port = try await serveMetrics(of: harness.agent)
        harness.start()
        _ = try await harness.waitUntilReady()
        let initial = try await harness.network.nextCall("the first network setup") { call in
            if case .ensureNetwork(let config) = call { return config.peers }
            return nil
        }
        XCTAssertEqual(initial, [:])

        // The bridge took the first address; the next one answers ARP, so the hand-out probes twice.
        harness.prober.setAnswer("02:aa:bb:cc:dd:01", for: IPv4Address(172, 30, 0, 2))
        _ = try await harness.local {
            try await $0.send(LocalRequest.acquire(network: "prod", owner: "c1", ifname: "eth0"))
        }
        let refused = try await harness.local { connection -> NetleaseError? in
            do {
                _ = try await connection.send(LocalRequest.acquire(network: "nowhere", owner: "c2", ifname: "eth0"))
                return nil
            } catch let error as NetleaseError {
                return error
            }
        }
        XCTAssertEqual(refused?.code, .unknownNetwork)
        let coordinator = try XCTUnwrap(self.coordinator)
        _ = try await withDeadline("h2 joins") {
            try await coordinator.connect { try await $0.join(host: "h2", underlay: IPv4Address(10, 9, 0, 2)) }
        }
        let joined = try await harness.network.nextCall("the mesh update for h2") { call in
            if case .ensureNetwork(let config) = call, !config.peers.isEmpty { return config.peers }
            return nil
        }
        XCTAssertEqual(joined, ["h2": IPv4Address(10, 9, 0, 2)])

        // The agent records the new peers once the mesh update verified; the scrape may come just before that.
        var metrics = try MetricsText(try await get("/metrics", port: port).body)
        for _ in 0..<100 where metrics["netlease_agent_peers", ["network": "prod"]] != 1 {
            try await Task.sleep(for: .milliseconds(50))
            metrics = try MetricsText(try await get("/metrics", port: port).body)
        }
        XCTAssertEqual(metrics["netlease_agent_peers", ["network": "prod"]], 1)
        XCTAssertEqual(metrics["netlease_agent_coordinator_connected"], 1)
        XCTAssertEqual(metrics["netlease_agent_attaches_total", ["result": "ok"]], 1)
        XCTAssertEqual(metrics["netlease_agent_attaches_total", ["result": "unknown-network"]], 1)
        XCTAssertEqual(metrics["netlease_agent_attach_duration_seconds_count"], 2)
        XCTAssertEqual(metrics["netlease_agent_arp_probes_total", ["result": "answered"]], 1)
        XCTAssertEqual(metrics["netlease_agent_arp_probes_total", ["result": "free"]], 1)
        XCTAssertEqual(metrics["netlease_agent_arp_probes_total", ["result": "error"]], 0)

        let promtool = try requirePromtool()
        let text = try await get("/metrics", port: port).body
        XCTAssertNil(try PrometheusTools.checkMetrics(text, promtool: promtool), text)
    }

    /// Each kind of drift a resync repairs is counted once, under its network and kind, whatever the number of
    /// failures of that kind; a round that finds nothing counts nothing, and a repair that does not take counts
    /// nothing and fails /readyz.
    func testEveryRepairIsCountedOnceByNetworkAndKindOnTheMetricsEndpoint() async throws {
        let harness = try AgentHarness(coordinator: coordinator, resync: .milliseconds(50))
        self.harness = harness
        let port = try await serveMetrics(of: harness.agent)
        harness.start()
        _ = try await harness.waitUntilReady()
        func repairs(_ metrics: MetricsText, _ kind: VerifyCheck) -> Double? {
            metrics["netlease_agent_repairs_total", ["network": "prod", "kind": kind.rawValue]]
        }
        let initial = try await scrape(port)
        XCTAssertNil(repairs(initial, .tunnelMaster), "nothing repaired yet")

        harness.network.recorder.setDrift([
            VerifyFailure(check: .tunnelMaster, detail: "nlvx-77 is not a port of nl-prod"),
            VerifyFailure(check: .tunnelFDB, detail: "no entry for 10.9.0.2"),
            VerifyFailure(check: .tunnelFDB, detail: "no entry for 10.9.0.3"),
        ])
        _ = try await scrape(port) { repairs($0, .tunnelMaster) != nil && repairs($0, .tunnelFDB) != nil }
        // Later rounds find the network whole and count nothing more.
        try await awaitVerifications(2, of: harness)
        var metrics = try await scrape(port)
        XCTAssertEqual(repairs(metrics, .tunnelMaster), 1)
        XCTAssertEqual(repairs(metrics, .tunnelFDB), 1, "one repair of two missing entries is one repair")
        XCTAssertNil(repairs(metrics, .bridgeMTU))

        harness.network.recorder.setDrift([VerifyFailure(check: .bridgeMTU, detail: "mtu 1280, want 1450")])
        _ = try await scrape(port) { repairs($0, .bridgeMTU) != nil }
        try await awaitVerifications(2, of: harness)
        metrics = try await scrape(port)
        XCTAssertEqual(repairs(metrics, .bridgeMTU), 1)
        XCTAssertEqual(repairs(metrics, .tunnelMaster), 1, "another kind's repair leaves this one's count alone")

        // Drift that the repair does not remove is not a repair: counted nowhere, reported by /readyz.
        harness.network.recorder.setVerifyFailures([VerifyFailure(check: .bridgeUp, detail: "bridge is down")])
        let deadline = ContinuousClock.now + defaultTestDeadline
        var readyz = try await get("/readyz", port: port)
        while readyz.status == 200 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))  // polling the endpoint, bounded by the deadline
            readyz = try await get("/readyz", port: port)
        }
        XCTAssertEqual(readyz.status, 503, readyz.body)
        XCTAssertTrue(readyz.body.contains("network prod: its host side drifted and the repair did not take"))
        metrics = try await scrape(port)
        XCTAssertNil(repairs(metrics, .bridgeUp), "a repair that did not take is not counted")
        XCTAssertEqual(repairs(metrics, .bridgeMTU), 1)

        // The network deleted at the coordinator leaves the rounds, and its failure leaves /readyz with it (it used
        // to stay there for good: no later round checks a network the agent no longer serves).
        coordinator.events.publish(.networkDeleted("prod"))
        let gone = ContinuousClock.now + defaultTestDeadline
        while readyz.body.contains("network prod: its host side drifted") && ContinuousClock.now < gone {
            try await Task.sleep(for: .milliseconds(20))  // polling the endpoint, bounded by the deadline
            readyz = try await get("/readyz", port: port)
        }
        XCTAssertFalse(readyz.body.contains("network prod: its host side drifted"), readyz.body)
    }

    /// A resync round during a peer change neither undoes the change nor counts it as a repair: the mesh update and
    /// the rounds take turns. A round that read the peers before h2 joined used to find h2's fresh forwarding entry
    /// "drifted", remove it and count a repair, and the mesh update's own check then failed and ended the session.
    func testAResyncDuringAPeerChangeNeitherUndoesItNorCountsARepair() async throws {
        let harness = try AgentHarness(coordinator: coordinator, resync: .milliseconds(20))
        self.harness = harness
        harness.network.recorder.trackPeers()
        let port = try await serveMetrics(of: harness.agent)
        harness.start()
        _ = try await harness.waitUntilReady()

        let (held, release) = harness.network.holdNextVerify { !$0.peers.isEmpty }
        let coordinator = try XCTUnwrap(self.coordinator)
        let h2 = IPv4Address(10, 9, 0, 2)
        _ = try await withDeadline("h2 joins") {
            try await coordinator.connect { try await $0.join(host: "h2", underlay: h2) }
        }
        try await withDeadline("the mesh update's check held") { for await _ in held { return } }
        // Ten resync periods in the middle of the peer change: a window for rounds that must not act (nothing to
        // await — a round that waits its turn shows no sign).
        try await Task.sleep(for: .milliseconds(200))
        release()

        let metrics = try await scrape(port) { $0["netlease_agent_peers", ["network": "prod"]] == 1 }
        XCTAssertNil(
            metrics["netlease_agent_repairs_total", ["network": "prod", "kind": "tunnel-fdb"]],
            "a peer change was counted as a repaired drift"
        )
        let ensured = harness.network.recorder.calls.compactMap { call -> [String: IPv4Address]? in
            if case .ensureNetwork(let config) = call { return config.peers }
            return nil
        }
        XCTAssertEqual(ensured.last, ["h2": h2], "the peer change was undone: \(ensured)")
        XCTAssertEqual(ensured.filter(\.isEmpty).count, 1, "only the first build applied no peers: \(ensured)")
    }

    /// Scrapes /metrics until `done` holds for it; fails the test when it does not within the test deadline.
    private func scrape(
        _ port: Int,
        file: StaticString = #filePath,
        line: UInt = #line,
        until done: (MetricsText) -> Bool = { _ in true }
    ) async throws -> MetricsText {
        let deadline = ContinuousClock.now + defaultTestDeadline
        while true {
            let metrics = try MetricsText(try await get("/metrics", port: port).body)
            if done(metrics) { return metrics }
            guard ContinuousClock.now < deadline else {
                XCTFail("the scrape never showed what was awaited", file: file, line: line)
                return metrics
            }
            try await Task.sleep(for: .milliseconds(20))  // polling the endpoint, bounded by the deadline
        }
    }

    /// Waits until the agent verified its networks `count` more times (each resync round verifies once).
    private func awaitVerifications(_ count: Int, of harness: AgentHarness) async throws {
        func verifications() -> Int {
            harness.network.recorder.calls.filter { if case .verify = $0 { true } else { false } }.count
        }
        let target = verifications() + count
        let deadline = ContinuousClock.now + defaultTestDeadline
        while verifications() < target {
            guard ContinuousClock.now < deadline else {
                throw DeadlineExceeded(what: "\(count) resync rounds", timeout: defaultTestDeadline)
            }
            try await Task.sleep(for: .milliseconds(20))  // polling the recorder, bounded by the deadline
        }
    }
}

/// The path of promtool; skips the test without it, or fails it when NETLEASE_REQUIRE_NETNS=1.
func requirePromtool(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    if let path = PrometheusTools.find("promtool") { return path }
    let message = "promtool not found: install the Debian package '\(PrometheusTools.package)'"
    if PrometheusTools.required { XCTFail("NETLEASE_REQUIRE_NETNS=1 but \(message)", file: file, line: line) }
    throw XCTSkip(message)
}
