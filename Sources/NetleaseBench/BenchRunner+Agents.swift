import Foundation
import NetleaseCore

// Agents mode: hosts that join, lease, heartbeat and watch, held while the coordinator's memory is sampled.

extension BenchRunner {
    /// Brings the agents and watchers up, holds them, prints the report, removes the hosts unless `keep`.
    func runAgents() async throws {
        let (before, created) = try await ensureNetwork()
        let needed = agents * (1 + agentLeases)
        guard Int(before.counts.free) >= needed else {
            throw NetleaseError.badRequest(
                "network \(network) has \(before.counts.free) free addresses; \(agents) agents with \(agentLeases) "
                    + "lease(s) each need \(needed) (use --subnet with a larger network, e.g. 10.0.0.0/15)"
            )
        }
        let engine = LeanEngine(threads: threads)
        defer { engine.shutdown() }
        let rss = RSSSampler(pid: coordinatorPid)
        rss.start()
        let rssBefore = rss.snapshot()
        let plan = AgentPlan(
            target: target,
            hostPrefix: "ba-\(runID)",
            agents: agents,
            leasesEach: agentLeases,
            heartbeatNs: UInt64(heartbeat * 1e9),
            holdSeconds: duration
        )
        let result = try await engine.runAgents(plan, onSteady: { rss.snapshot() })
        let samples = rss.stop()
        let stats = try await admin { try await $0.stats() }
        var report = AgentReport(
            agents: agents,
            leasesEach: agentLeases,
            heartbeatSeconds: heartbeat,
            holdSeconds: duration,
            network: network,
            subnet: before.spec.subnet.description
        )
        report.bringUpSeconds = result.bringUpSeconds
        report.watchersUpSeconds = result.watchersUpSeconds
        report.join = LatencySummary(nanoseconds: result.joinLatencies)
        report.acquire = LatencySummary(nanoseconds: result.acquireLatencies)
        report.heartbeat = LatencySummary(nanoseconds: result.heartbeatLatencies)
        report.heartbeats = result.heartbeatLatencies.count
        report.eventsReceived = result.events
        report.errors = result.errors
        report.connectionsAtCoordinator = try stats.int("connections") ?? 0
        report.watchersAtCoordinator = try stats.int("watchers") ?? 0
        report.leasesActive = try stats.int("leases-active") ?? 0
        report.hostsUp = try stats.int("hosts-up") ?? 0
        report.rssBeforeKiB = rssBefore?.rss
        report.rssSteadyKiB = result.steadyRSS?.rss
        report.rssMaxKiB = samples?.maxRSS
        report.hwmKiB = samples?.hwm
        print(json ? try report.jsonText() : report.text())

        if !keep {
            let started = ContinuousClock.now
            let hosts = (0..<agents).map(plan.host)
            try await admin { connection in
                var index = 0
                while index < hosts.count {
                    let chunk = hosts[index..<min(index + 32, hosts.count)]
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for host in chunk { group.addTask { _ = try? await connection.removeHost(host) } }
                        try await group.waitForAll()
                    }
                    index += 32
                }
            }
            let seconds = Self.seconds(ContinuousClock.now - started)
            log("removed \(agents) bench host(s) in \(String(format: "%.1f", seconds)) s")
            if created { _ = try? await admin { try await $0.deleteNetwork(network) } }
        }
    }
}
