import Foundation

/// The report of a load run, as text for people or JSON for scripts (`scripts/bench.sh` reads its keys).
struct BenchReport: Encodable {
    var mode: String
    var client: String
    var connections: Int
    var pipeline: Int
    var threads: Int
    var offeredRate: Double
    var durationRequested: Double
    var network: String
    var subnet: String
    var prefillPercent: Double
    var prefilled: Int
    var prefillSeconds: Double
    var poolBudget: Int?
    var window: Double = 0
    var budgetExhausted = false
    var acquires = 0
    var acquiresPerSecond: Double = 0
    var releases = 0
    var releasesPerSecond: Double = 0
    var acquireLatencyMs = LatencySummary(nanoseconds: [])
    var releaseLatencyMs: LatencySummary?
    /// Open loop: the client's own lateness in sending (part of the latency above).
    var sendLagMs: LatencySummary?
    var errors: [String: Int] = [:]
    var storeOperations: Int64 = 0
    var storeCommits: Int64 = 0
    var operationsPerCommit: Double = 0
    var largestBatch: Int64 = 0
    var verification = Verification(ok: false, acknowledgedHeld: 0, listed: 0, seconds: 0, problems: [])
    var coordinatorRSS: RSSSampler.Samples?
    /// CPU used during the measured phase (connect to last reply), and per acquire or release in the window.
    var clientCPUSeconds: Double = 0
    var coordinatorCPUSeconds: Double?
    var clientCPUMicrosPerOperation: Double = 0
    var coordinatorCPUMicrosPerOperation: Double?

    mutating func fill(from outcome: LoadOutcome) {
        window = outcome.window
        budgetExhausted = outcome.budgetExhausted
        var acquireSamples: [UInt64] = []
        var releaseSamples: [UInt64] = []
        var lags: [UInt64] = []
        for r in outcome.connections {
            lags += r.sendLags
            acquires += r.acquiresInWindow
            releases += r.releasesInWindow
            acquireSamples += r.acquireLatencies
            releaseSamples += r.releaseLatencies
            for (code, n) in r.errors { errors[code, default: 0] += n }
        }
        acquiresPerSecond = window > 0 ? Double(acquires) / window : 0
        releasesPerSecond = window > 0 ? Double(releases) / window : 0
        acquireLatencyMs = LatencySummary(nanoseconds: acquireSamples)
        releaseLatencyMs = releaseSamples.isEmpty ? nil : LatencySummary(nanoseconds: releaseSamples)
        sendLagMs = lags.isEmpty ? nil : LatencySummary(nanoseconds: lags)
    }

    /// CPU per acquire or release in the window, from the CPU seconds and the counts.
    mutating func computePerOperationCPU() {
        let operations = Double(acquires + releases)
        guard operations > 0 else { return }
        clientCPUMicrosPerOperation = clientCPUSeconds / operations * 1e6
        coordinatorCPUMicrosPerOperation = coordinatorCPUSeconds.map { $0 / operations * 1e6 }
    }

    func jsonText() throws -> String {
        var copy = self
        copy.operationsPerCommit = storeCommits > 0 ? Double(storeOperations) / Double(storeCommits) : 0
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(copy), as: UTF8.self)
    }

    func text() -> String {
        var lines: [String] = []
        let loop = offeredRate > 0 ? String(format: "open loop, offered %.0f/s", offeredRate) : "closed loop"
        lines.append(
            "bench \(mode), \(client) client, \(connections) connections x \(pipeline) in flight, \(loop), "
                + "\(threads) client thread(s)"
        )
        lines.append(
            "network \(network) \(subnet); prefill \(prefillPercent)% (\(prefilled) leases added"
                + String(format: " in %.2f s)", prefillSeconds)
        )
        lines.append(
            String(format: "window %.3f s", window)
                + (budgetExhausted ? " (ended early: the pool's free addresses were used up)" : "")
        )
        lines.append("acquires: \(acquires)  = " + String(format: "%.0f/s", acquiresPerSecond))
        lines.append("  latency " + acquireLatencyMs.text)
        if let sendLagMs { lines.append("  (of which the client's own send lag: " + sendLagMs.text + ")") }
        if let releaseLatencyMs {
            lines.append("releases: \(releases)  = " + String(format: "%.0f/s", releasesPerSecond))
            lines.append("  latency " + releaseLatencyMs.text)
        }
        lines.append("errors: " + Self.errorsText(errors))
        let factor = storeCommits > 0 ? Double(storeOperations) / Double(storeCommits) : 0
        lines.append(
            "store: \(storeOperations) operations in \(storeCommits) commits ("
                + String(format: "%.1f", factor) + " per commit; largest batch so far \(largestBatch))"
        )
        let coordinatorCPU = coordinatorCPUSeconds.map {
            String(format: ", coordinator %.2f s (%.1f us/op)", $0, coordinatorCPUMicrosPerOperation ?? 0)
        }
        lines.append(
            String(
                format: "CPU in the measured phase: bench %.2f s (%.1f us/op)",
                clientCPUSeconds,
                clientCPUMicrosPerOperation
            ) + (coordinatorCPU ?? "")
        )
        if let coordinatorRSS {
            lines.append(
                "coordinator memory: VmRSS max \(coordinatorRSS.maxRSS) KiB, last \(coordinatorRSS.lastRSS) "
                    + "KiB, VmHWM \(coordinatorRSS.hwm) KiB"
            )
        }
        lines.append(
            verification.ok
                ? "verified: \(verification.acknowledgedHeld) acknowledged lease(s) present with their addresses, "
                    + "all unique (LEASE-LIST of \(verification.listed) records, "
                    + String(format: "%.1f s)", verification.seconds)
                : "VERIFICATION FAILED: " + verification.problems.joined(separator: "; ")
        )
        return lines.joined(separator: "\n")
    }

    /// `code=count …` sorted by code, or `none`.
    static func errorsText(_ errors: [String: Int]) -> String {
        guard !errors.isEmpty else { return "none" }
        return errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
