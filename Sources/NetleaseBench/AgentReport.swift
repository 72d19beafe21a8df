import Foundation

/// The report of an agents run: bring-up, latencies and the coordinator's memory while it held them.
struct AgentReport: Encodable {
    var agents: Int
    var leasesEach: Int
    var heartbeatSeconds: Double
    var holdSeconds: Double
    var network: String
    var subnet: String
    var bringUpSeconds: Double = 0
    var watchersUpSeconds: Double = 0
    var join = LatencySummary(nanoseconds: [])
    var acquire = LatencySummary(nanoseconds: [])
    var heartbeat = LatencySummary(nanoseconds: [])
    var heartbeats = 0
    var eventsReceived = 0
    var errors: [String: Int] = [:]
    var connectionsAtCoordinator: Int64 = 0
    var watchersAtCoordinator: Int64 = 0
    var leasesActive: Int64 = 0
    var hostsUp: Int64 = 0
    var rssBeforeKiB: Int?
    var rssSteadyKiB: Int?
    var rssMaxKiB: Int?
    var hwmKiB: Int?

    func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func text() -> String {
        var lines: [String] = []
        lines.append(
            "bench agents: \(agents) hosts joined \(network) \(subnet), "
                + "\(leasesEach) host-bound lease(s) each, heartbeat every \(heartbeatSeconds) s, "
                + "\(agents) WATCH connections, held \(holdSeconds) s"
        )
        lines.append(
            String(
                format: "agents up (join + leases) in %.2f s; watchers up in %.2f s",
                bringUpSeconds,
                watchersUpSeconds
            )
        )
        lines.append("  join      " + join.text)
        if acquire.count > 0 { lines.append("  acquire   " + acquire.text) }
        lines.append("  heartbeat " + heartbeat.text + " (steady state, after every agent and watcher was up)")
        lines.append("events received by watchers: \(eventsReceived)")
        lines.append(
            "coordinator STATS: connections=\(connectionsAtCoordinator) watchers=\(watchersAtCoordinator) "
                + "hosts-up=\(hostsUp) leases-active=\(leasesActive)"
        )
        func kib(_ v: Int?) -> String {
            v.map { "\($0) KiB (" + String(format: "%.1f MiB)", Double($0) / 1024) } ?? "n/a"
        }
        lines.append(
            "coordinator VmRSS: before \(kib(rssBeforeKiB)), steady \(kib(rssSteadyKiB)), max sampled "
                + "\(kib(rssMaxKiB)); VmHWM \(kib(hwmKiB))"
        )
        lines.append("errors: " + BenchReport.errorsText(errors))
        return lines.joined(separator: "\n")
    }
}
