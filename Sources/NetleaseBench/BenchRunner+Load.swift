import Foundation
import NetleaseCore
import NetleaseWire

// Load mode: acquires (and releases) over many connections, then a check of what was acknowledged.

extension BenchRunner {
    func runLoad() async throws {
        let (before, created) = try await ensureNetwork()
        log("network \(network) \(before.spec.subnet) cooldown=\(before.spec.cooldown)s: usable=\(before.counts.usable) "
            + "free=\(before.counts.free)\(created ? " (created)" : "")")
        let engine = LeanEngine(threads: threads)
        defer { engine.shutdown() }

        // Prefill through the same protocol, flat out.
        var fillHeld: [String: UInt32] = [:]
        var fillSeconds = 0.0
        let usable = Int(before.counts.usable)
        let target = Int((prefill / 100 * Double(usable)).rounded(.up))
        let toFill = max(0, min(Int(before.counts.free), target - (usable - Int(before.counts.free))))
        if toFill > 0 {
            log("prefilling \(toFill) addresses to reach \(prefill)% of \(usable)")
            let fill = try await engine.run(
                LoadPlan(endpoint: endpoint, secret: secret, network: network, ownerPrefix: "fill-\(runID)",
                         connections: min(connections, 16), pipeline: 16, intervalNs: 0, release: false,
                         budget: toFill, duration: 3600))
            fillSeconds = fill.window
            for r in fill.connections { for (owner, address) in r.heldOwners(prefix: "fill-\(runID)") { fillHeld[owner] = address } }
            let failed = fill.connections.reduce(0) { $0 + $1.errors.values.reduce(0, +) }
            log("prefilled \(fillHeld.count) in \(String(format: "%.2f", fill.window)) s (\(failed) errors)")
        }

        let free = Int(try await admin { try await $0.network(network) }.counts.free)
        let budget = release ? Int.max : free
        let storeBefore = try await storeCounters()
        let rss = RSSSampler(pid: coordinatorPid)
        rss.start()
        let cpuBefore = (client: BenchSupport.ownCPUSeconds(), coordinator: coordinatorPid.flatMap(BenchSupport.cpuSeconds(of:)))
        let intervalNs: UInt64 = rate > 0 ? UInt64((Double(connections) / rate * 1e9).rounded()) : 0
        let plan = LoadPlan(endpoint: endpoint, secret: secret, network: network, ownerPrefix: "b-\(runID)",
                            connections: connections, pipeline: pipeline, intervalNs: intervalNs, release: release,
                            budget: budget, duration: duration)
        let measured = clientKind == "lean"
            ? try await engine.run(plan) : try await StandardClientLoad(plan: plan).run()
        let cpuAfter = (client: BenchSupport.ownCPUSeconds(), coordinator: coordinatorPid.flatMap(BenchSupport.cpuSeconds(of:)))
        let rssSamples = rss.stop()
        let storeAfter = try await storeCounters()

        // Verify against the coordinator's own list.
        var held: [String: UInt32] = [:]
        for r in measured.connections { for (owner, address) in r.heldOwners(prefix: "b-\(runID)") { held[owner] = address } }
        let releaseFailures = measured.connections.reduce(into: Set<String>()) { set, r in
            for seq in r.releaseFailedSeqs { set.insert("b-\(runID)-\(r.index)-\(seq)") }
        }
        let verification = try await verify(
            expected: held.merging(fillHeld) { a, _ in a }, forbiddenPrefix: release ? "b-\(runID)-" : nil,
            tolerated: releaseFailures)

        var report = BenchReport(
            mode: release ? "acquire+release" : "acquire", client: clientKind, connections: connections,
            pipeline: pipeline, threads: threads, offeredRate: rate, durationRequested: duration,
            network: network, subnet: before.spec.subnet.description, prefillPercent: prefill,
            prefilled: fillHeld.count, prefillSeconds: fillSeconds, poolBudget: release ? nil : free)
        report.fill(from: measured)
        report.storeOperations = storeAfter.operations - storeBefore.operations
        report.storeCommits = storeAfter.commits - storeBefore.commits
        report.largestBatch = storeAfter.largest
        report.verification = verification
        report.coordinatorRSS = rssSamples
        report.clientCPUSeconds = cpuAfter.client - cpuBefore.client
        if let a = cpuAfter.coordinator, let b = cpuBefore.coordinator { report.coordinatorCPUSeconds = a - b }
        let operations = Double(report.acquires + report.releases)
        if operations > 0 {
            report.clientCPUMicrosPerOperation = report.clientCPUSeconds / operations * 1e6
            report.coordinatorCPUMicrosPerOperation = report.coordinatorCPUSeconds.map { $0 / operations * 1e6 }
        }
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
        if !verification.ok { throw BenchVerificationFailed() }
    }

    /// Every expected (owner → address) is an active lease in LEASE-LIST; addresses are unique; no owner with
    /// `forbiddenPrefix` remains (released leases), except the `tolerated` ones.
    func verify(expected: [String: UInt32], forbiddenPrefix: String?, tolerated: Set<String>) async throws
        -> Verification
    {
        let started = ContinuousClock.now
        let leases = try await admin { try await $0.leases(Ledger.LeaseFilter(network: network)) }
        var problems: [String] = []
        var byOwner: [String: UInt32] = [:]
        var addresses = Set<UInt32>()
        for lease in leases {
            if !addresses.insert(lease.address.value).inserted {
                problems.append("address \(lease.address) listed twice")
            }
            if lease.state == .active { byOwner[lease.owner] = lease.address.value }
        }
        var missing = 0
        var moved = 0
        var seen = Set<UInt32>()
        var duplicates = 0
        for (owner, address) in expected {
            if !seen.insert(address).inserted { duplicates += 1 }
            guard let listed = byOwner[owner] else { missing += 1; continue }
            if listed != address { moved += 1 }
        }
        if missing > 0 { problems.append("\(missing) acknowledged lease(s) missing from LEASE-LIST") }
        if moved > 0 { problems.append("\(moved) acknowledged lease(s) listed with another address") }
        if duplicates > 0 { problems.append("\(duplicates) address(es) acknowledged to two owners") }
        var leftovers = 0
        if let forbiddenPrefix {
            for owner in byOwner.keys where owner.hasPrefix(forbiddenPrefix) && !tolerated.contains(owner) {
                leftovers += 1
            }
            if leftovers > 0 { problems.append("\(leftovers) released lease(s) still active") }
        }
        if problems.count > 20 { problems = Array(problems.prefix(20)) + ["…"] }
        return Verification(
            ok: problems.isEmpty, acknowledgedHeld: expected.count, listed: leases.count,
            seconds: Self.seconds(ContinuousClock.now - started), problems: problems)
    }
}
