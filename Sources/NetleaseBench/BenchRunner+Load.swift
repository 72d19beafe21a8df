import Foundation
import NetleaseCore

// Load mode: acquires (and releases) over many connections, then a check of what was acknowledged.

extension BenchRunner {
    /// Prefills, measures, verifies, prints the report, cleans up unless `keep`; returns the report.
    func runLoad() async throws -> BenchReport {
        let (before, created) = try await ensureNetwork()
        log(
            "network \(network) \(before.spec.subnet) cooldown=\(before.spec.cooldown)s: "
                + "usable=\(before.counts.usable) free=\(before.counts.free)\(created ? " (created)" : "")"
        )
        let engine = LeanEngine(threads: threads)
        defer { engine.shutdown() }

        let (fillHeld, fillSeconds) = try await prefill(
            engine,
            usable: Int(before.counts.usable),
            free: Int(before.counts.free)
        )

        let free = Int(try await admin { try await $0.network(network) }.counts.free)
        let storeBefore = try await storeCounters()
        let rss = RSSSampler(pid: coordinatorPid)
        rss.start()
        let cpuBefore = (
            client: ProcessUsage.ownCPUSeconds(), coordinator: coordinatorPid.flatMap(ProcessUsage.cpuSeconds)
        )
        let plan = LoadPlan(
            target: target,
            ownerPrefix: "b-\(runID)",
            connections: connections,
            pipeline: pipeline,
            intervalNs: LoadPlan.intervalNs(rate: rate, connections: connections),
            release: release,
            budget: LoadPlan.budget(release: release, free: free),
            duration: duration
        )
        let measured =
            clientKind == "lean"
            ? try await engine.run(plan) : try await StandardClientLoad(plan: plan).run()
        let cpuAfter = (
            client: ProcessUsage.ownCPUSeconds(), coordinator: coordinatorPid.flatMap(ProcessUsage.cpuSeconds)
        )
        let rssSamples = rss.stop()
        let storeAfter = try await storeCounters()

        // Verify against the coordinator's own list.
        var held: [String: UInt32] = [:]
        for r in measured.connections { for (owner, address) in r.heldOwners(plan) { held[owner] = address } }
        let releaseFailures = Set(measured.connections.flatMap { $0.releaseFailedOwners(plan) })
        let verification = try await verify(
            expected: held.merging(fillHeld) { a, _ in a },
            forbiddenPrefix: release ? plan.ownerPrefix + "-" : nil,
            tolerated: releaseFailures
        )

        var report = BenchReport(
            mode: release ? "acquire+release" : "acquire",
            client: clientKind,
            connections: connections,
            pipeline: pipeline,
            threads: threads,
            offeredRate: rate,
            durationRequested: duration,
            network: network,
            subnet: before.spec.subnet.description,
            prefillPercent: prefill,
            prefilled: fillHeld.count,
            prefillSeconds: fillSeconds,
            poolBudget: release ? nil : free
        )
        report.fill(from: measured)
        report.storeOperations = storeAfter.operations - storeBefore.operations
        report.storeCommits = storeAfter.commits - storeBefore.commits
        report.largestBatch = storeAfter.largest
        report.verification = verification
        report.coordinatorRSS = rssSamples
        report.clientCPUSeconds = cpuAfter.client - cpuBefore.client
        if let a = cpuAfter.coordinator, let b = cpuBefore.coordinator { report.coordinatorCPUSeconds = a - b }
        report.computePerOperationCPU()
        print(json ? try report.jsonText() : report.text())

        if !keep {
            let owners = Array(held.keys) + Array(fillHeld.keys)
            try await releaseAll(owners: owners)
            if created {
                do {
                    try await admin { try await $0.deleteNetwork(network) }
                } catch {
                    log("could not delete network \(network): \(error)")
                }
            }
        }
        return report
    }

    /// Fills the pool to `prefill` percent through the same protocol, flat out. Returns the leases it made (owner
    /// → address) and how long that took.
    private func prefill(
        _ engine: LeanEngine,
        usable: Int,
        free: Int
    ) async throws
        -> (held: [String: UInt32], seconds: Double)
    {
        let toFill = LoadPlan.prefillCount(percent: prefill, usable: usable, free: free)
        guard toFill > 0 else { return ([:], 0) }
        log("prefilling \(toFill) addresses to reach \(prefill)% of \(usable)")
        let plan = LoadPlan(
            target: target,
            ownerPrefix: "fill-\(runID)",
            connections: min(connections, 16),
            pipeline: 16,
            intervalNs: 0,
            release: false,
            budget: toFill,
            duration: 3600
        )
        let fill = try await engine.run(plan)
        var held: [String: UInt32] = [:]
        for r in fill.connections { for (owner, address) in r.heldOwners(plan) { held[owner] = address } }
        let failed = fill.connections.reduce(0) { $0 + $1.errors.values.reduce(0, +) }
        log("prefilled \(held.count) in \(String(format: "%.2f", fill.window)) s (\(failed) errors)")
        return (held, fill.window)
    }

    /// Fetches the network's LEASE-LIST and checks it against `expected` (see `Verification`).
    func verify(
        expected: [String: UInt32],
        forbiddenPrefix: String?,
        tolerated: Set<String>
    ) async throws
        -> Verification
    {
        let started = ContinuousClock.now
        let leases = try await admin { try await $0.leases(Ledger.LeaseFilter(network: network)) }
        var verification = Verification(
            expected: expected,
            listed: leases,
            forbiddenPrefix: forbiddenPrefix,
            tolerated: tolerated
        )
        verification.seconds = Self.seconds(ContinuousClock.now - started)
        return verification
    }
}
