import NetleaseClient
import NetleaseCore
import NetleaseWire

/// The same closed- or open-loop load through `NetleaseConnection` (one Swift task per request in flight).
struct StandardClientLoad: Sendable {
    /// The same plan the lean client runs (its `intervalNs` gives the open-loop schedule).
    let plan: LoadPlan

    struct Sample: Sendable {
        var seq: Int32
        var acquire: UInt64?
        var release: UInt64?
        var releaseFailed = false
        var acquiredAt: UInt64 = 0
        var address: UInt32 = 0
        var error: String?
    }

    func run() async throws -> LoadOutcome {
        let shared = RunShared(budget: plan.budget)
        let startNs = BenchClock.nowNs() + UInt64(max(0.5, Double(plan.connections) * 0.01) * 1e9)
        let deadlineNs = startNs + UInt64(plan.duration * 1e9)
        let intervalNs = plan.intervalNs
        let results = try await withThrowingTaskGroup(of: ConnectionResult.self) { group in
            for index in 0..<plan.connections {
                group.addTask {
                    try await NetleaseConnection.connect(to: plan.target.endpoint, secret: plan.target.secret) {
                        connection in
                        try await runConnection(
                            connection,
                            index: index,
                            shared: shared,
                            startNs: startNs,
                            deadlineNs: deadlineNs,
                            intervalNs: intervalNs
                        )
                    }
                }
            }
            var all: [ConnectionResult] = []
            for try await r in group { all.append(r) }
            return all.sorted { $0.index < $1.index }
        }
        return LoadOutcome(
            results,
            exhaustedAt: shared.exhaustedAtNs.load(ordering: .relaxed),
            startNs: startNs,
            deadlineNs: deadlineNs
        )
    }

    private func one(_ connection: NetleaseConnection, seq: Int32, index: Int, intended: UInt64) async -> Sample {
        var sample = Sample(seq: seq)
        let owner = plan.owner(connection: index, seq: seq)
        do {
            let lease = try await connection.acquire(AcquireRequest(network: plan.target.network, owner: owner))
            let now = BenchClock.nowNs()
            sample.acquire = now &- intended
            sample.acquiredAt = now
            sample.address = lease.address.value
            if plan.release {
                do {
                    _ = try await connection.send(.release(ReleaseRequest(network: plan.target.network, owner: owner)))
                    sample.release = BenchClock.nowNs() &- now
                } catch {
                    sample.releaseFailed = true
                    sample.error = "release:" + ((error as? NetleaseError)?.code.rawValue ?? "client")
                }
            }
        } catch let error as NetleaseError {
            sample.error = error.code.rawValue
        } catch {
            sample.error = "client"
        }
        return sample
    }

    private func runConnection(
        _ connection: NetleaseConnection,
        index: Int,
        shared: RunShared,
        startNs: UInt64,
        deadlineNs: UInt64,
        intervalNs: UInt64
    ) async throws -> ConnectionResult {
        func sleep(until ns: UInt64) async throws {
            let now = BenchClock.nowNs()
            if ns > now { try await Task.sleep(nanoseconds: ns - now) }
        }
        try await sleep(until: startNs)
        var result = ConnectionResult(index: index)
        func absorb(_ s: Sample) {
            if let a = s.acquire {
                result.acquireLatencies.append(a)
                if s.acquiredAt <= deadlineNs { result.acquiresInWindow += 1 }
                result.lastReplyNs = max(result.lastReplyNs, s.acquiredAt)
                if !plan.release { result.held.append((s.seq, s.address)) }
            }
            if let r = s.release {
                result.releaseLatencies.append(r)
                if s.acquiredAt + r <= deadlineNs { result.releasesInWindow += 1 }
            }
            if s.releaseFailed { result.releaseFailedSeqs.append(s.seq) }
            if let e = s.error { result.errors[e, default: 0] += 1 }
        }
        @Sendable func take() -> Bool {
            let now = BenchClock.nowNs()
            return now < deadlineNs && shared.take(now: now)
        }
        if intervalNs == 0 {
            try await withThrowingTaskGroup(of: [Sample].self) { group in
                let lanes = Int32(plan.pipeline)
                for lane in 0..<lanes {
                    group.addTask {
                        var samples: [Sample] = []
                        var n: Int32 = 0
                        while take() {
                            let seq = n * lanes + lane
                            n += 1
                            samples.append(await one(connection, seq: seq, index: index, intended: BenchClock.nowNs()))
                        }
                        return samples
                    }
                }
                for try await samples in group { samples.forEach(absorb) }
            }
        } else {
            try await withThrowingTaskGroup(of: Sample.self) { group in
                var intended = plan.firstIntendedNs(startNs: startNs, connection: index)
                var seq: Int32 = 0
                var more = true
                while more && intended < deadlineNs {
                    try await sleep(until: intended)
                    let now = BenchClock.nowNs()
                    while intended <= now && intended < deadlineNs {
                        guard take() else {
                            more = false
                            break
                        }
                        let s = seq
                        let at = intended
                        group.addTask { await one(connection, seq: s, index: index, intended: at) }
                        seq += 1
                        intended += intervalNs
                    }
                }
                for try await s in group { absorb(s) }
            }
        }
        return result
    }
}
