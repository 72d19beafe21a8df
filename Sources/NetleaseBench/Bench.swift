import Foundation
import HostNetwork
import NIOCore
import NIOPosix
import NetleaseClient
import NetleaseCore
import NetleaseWire
import Synchronization

#if canImport(Glibc)
import Glibc
import NetleaseTransport
#endif

// `netlease bench`: a load generator over the real wire protocol (TCP, loopback only).
//
// Two clients:
// - `lean` (default): one NIO channel handler per connection that writes pre-rendered request bytes and scans reply
//   bytes for LF, `address=` and the error code. No Swift concurrency per request, no String per reply.
// - `standard`: the project's `NetleaseConnection` (async/await, one task per request in flight), to show what the
//   library client itself costs.
// Latency is measured from the time a request was *meant* to go out (open loop: its scheduled time, so a stalled
// coordinator is not hidden by coordinated omission; closed loop: the time it was written) to the time its reply
// line was read. Every latency sample is kept; percentiles come from the sorted array.

/// What `netlease bench` was asked to do (the CLI validates the ranges).
public struct BenchOptions: Sendable {
    public var connections = 32
    public var pipeline = 1
    public var duration: Double = 10
    public var rate: Double = 0
    public var network = "bench"
    public var subnet = "10.250.0.0/16"
    public var prefill: Double = 0
    public var release = false
    public var clientKind = "lean"
    public var threads = 1
    public var keep = false
    public var agents = 0
    public var agentLeases = 0
    public var heartbeat: Double = 5
    public var agentStartPeers: Int?
    public var runs = 3
    public var coordinatorPid: Int32?
    public var json = false

    public init() {}

    public static let defaults = BenchOptions()
}

/// The run finished but what the coordinator lists disagrees with what it acknowledged.
public struct BenchVerificationFailed: Error {}

// MARK: - orchestration

public struct BenchRunner: Sendable {
    let connections: Int
    let pipeline: Int
    let duration: Double
    let rate: Double
    let network: String
    let subnet: String
    let prefill: Double
    let release: Bool
    let clientKind: String
    let threads: Int
    let keep: Bool
    let agents: Int
    let agentLeases: Int
    let heartbeat: Double
    let coordinatorPid: Int32?
    let agentStartPeers: Int?
    let runs: Int
    let json: Bool
    let endpoint: Endpoint
    let secret: String?
    let runID: String

    public init(options o: BenchOptions, endpoint: Endpoint, secret: String?) {
        connections = o.connections
        pipeline = o.pipeline
        duration = o.duration
        rate = o.rate
        network = o.network
        subnet = o.subnet
        prefill = o.prefill
        release = o.release
        clientKind = o.clientKind
        threads = o.threads
        keep = o.keep
        agents = o.agents
        agentLeases = o.agentLeases
        heartbeat = o.heartbeat
        coordinatorPid = o.coordinatorPid
        agentStartPeers = o.agentStartPeers
        runs = o.runs
        json = o.json
        self.endpoint = endpoint
        self.secret = secret
        runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }

    /// Runs the mode the options select: agent start, agents, or acquire load.
    public func run() async throws {
        if let peers = agentStartPeers {
            try await runAgentStart(peers: peers, runs: runs)
        } else if agents > 0 {
            try await runAgents()
        } else {
            try await runLoad()
        }
    }

    func log(_ text: String) {
        FileHandle.standardError.write(Data("bench: \(text)\n".utf8))
    }

    func admin<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
        try await NetleaseConnection.connect(to: endpoint, secret: secret, body)
    }

    /// Shows the network, creating it (cooldown 0) when missing. Returns the summary and whether it was created.
    func ensureNetwork() async throws -> (NetworkSummary, Bool) {
        try await admin { connection in
            do {
                return (try await connection.network(network), false)
            } catch let error as NetleaseError where error.code == .unknownNetwork {
                let spec = NetworkSpec(name: network, subnet: IPv4Subnet(subnet)!, cooldown: 0)
                _ = try await connection.createNetwork(spec)
                return (try await connection.network(network), true)
            }
        }
    }

    func storeCounters() async throws -> (operations: Int64, commits: Int64, largest: Int64) {
        let stats = try await admin { try await $0.stats() }
        return (try stats.int("store-operations") ?? 0, try stats.int("store-commits") ?? 0,
                try stats.int("store-largest-batch") ?? 0)
    }

    // MARK: load mode

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

    /// Releases the given owners (pipelined on a few connections), quietly.
    func releaseAll(owners: [String]) async throws {
        guard !owners.isEmpty else { return }
        let started = ContinuousClock.now
        let lanes = 8
        let network = self.network
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<lanes {
                let mine = stride(from: lane, to: owners.count, by: lanes).map { owners[$0] }
                group.addTask {
                    try await admin { connection in
                        var index = 0
                        while index < mine.count {
                            let chunk = mine[index..<min(index + 32, mine.count)]
                            try await withThrowingTaskGroup(of: Void.self) { sends in
                                for owner in chunk {
                                    sends.addTask { _ = try? await connection.release(ReleaseRequest(network: network, owner: owner)) }
                                }
                                try await sends.waitForAll()
                            }
                            index += 32
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        log("released \(owners.count) lease(s) made by the bench in \(String(format: "%.1f", Self.seconds(ContinuousClock.now - started))) s")
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    // MARK: agents mode

    func runAgents() async throws {
        let (before, created) = try await ensureNetwork()
        let needed = agents * (1 + agentLeases)
        guard Int(before.counts.free) >= needed else {
            throw NetleaseError.badRequest(
                "network \(network) has \(before.counts.free) free addresses; \(agents) agents with \(agentLeases) "
                    + "lease(s) each need \(needed) (use --subnet with a larger network, e.g. 10.0.0.0/15)")
        }
        let engine = LeanEngine(threads: threads)
        defer { engine.shutdown() }
        let rss = RSSSampler(pid: coordinatorPid)
        rss.start()
        let rssBefore = rss.snapshot()
        let hostPrefix = "ba-\(runID)"
        let result = try await engine.runAgents(
            AgentPlan(endpoint: endpoint, secret: secret, network: network, hostPrefix: hostPrefix, agents: agents,
                      leasesEach: agentLeases, heartbeatNs: UInt64(heartbeat * 1e9), holdSeconds: duration),
            onSteady: { rss.snapshot() })
        let samples = rss.stop()
        let stats = try await admin { try await $0.stats() }
        var report = AgentReport(
            agents: agents, leasesEach: agentLeases, heartbeatSeconds: heartbeat, holdSeconds: duration,
            network: network, subnet: before.spec.subnet.description)
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
            let hosts = (0..<agents).map { "\(hostPrefix)-\($0)" }
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
            log("removed \(agents) bench host(s) in \(String(format: "%.1f", Self.seconds(ContinuousClock.now - started))) s")
            if created { _ = try? await admin { try await $0.deleteNetwork(network) } }
        }
    }
}

// MARK: - support

public enum BenchSupport {
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        guard let address = IPv4Address(host) else { return false }
        return address.value >> 24 == 127
    }

    static func nowNs() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// CPU seconds (user + system) this process used so far.
    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(Int32(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }

    /// CPU seconds (user + system) of another process, from /proc/PID/stat (10 ms resolution).
    static func cpuSeconds(of pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name: field 3 is fields[0]; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (user + system) / ticks
    }

    /// VmRSS and VmHWM of a process in KiB.
    static func memory(of pid: Int32) -> (rss: Int, hwm: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        var rss = 0
        var hwm = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2 else { continue }
            if line.hasPrefix("VmRSS:") { rss = Int(parts[1]) ?? 0 }
            if line.hasPrefix("VmHWM:") { hwm = Int(parts[1]) ?? 0 }
        }
        return (rss, hwm)
    }
}

/// Samples a process's memory every 250 ms on a background thread.
final class RSSSampler: Sendable {
    struct Samples: Sendable, Encodable {
        var maxRSS: Int
        var lastRSS: Int
        var hwm: Int
    }

    let pid: Int32?
    private let state = Mutex<(running: Bool, samples: Samples?)>((false, nil))

    init(pid: Int32?) { self.pid = pid }

    func snapshot() -> (rss: Int, hwm: Int)? { pid.flatMap(BenchSupport.memory(of:)) }

    func start() {
        guard let pid else { return }
        state.withLock { $0.running = true }
        let thread = Thread { [self] in
            while state.withLock({ $0.running }) {
                if let m = BenchSupport.memory(of: pid) {
                    state.withLock { s in
                        var samples = s.samples ?? Samples(maxRSS: 0, lastRSS: 0, hwm: 0)
                        samples.maxRSS = max(samples.maxRSS, m.rss)
                        samples.lastRSS = m.rss
                        samples.hwm = max(samples.hwm, m.hwm)
                        s.samples = samples
                    }
                }
                Thread.sleep(forTimeInterval: 0.25)
            }
        }
        thread.start()
    }

    func stop() -> Samples? {
        state.withLock { s in
            s.running = false
            return s.samples
        }
    }
}

// MARK: - results

/// What one connection saw.
struct ConnectionResult: Sendable {
    var index: Int
    var acquireLatencies: [UInt64] = []
    var releaseLatencies: [UInt64] = []
    var acquiresInWindow = 0
    var releasesInWindow = 0
    var lastReplyNs: UInt64 = 0
    var errors: [String: Int] = [:]
    /// (owner sequence, address) of acknowledged leases not released.
    var held: [(Int32, UInt32)] = []
    var releaseFailedSeqs: [Int32] = []
    /// Open loop: how late the client itself sent each request (actual send time − scheduled time).
    var sendLags: [UInt64] = []
    // Agents mode.
    var joinLatencies: [UInt64] = []
    var heartbeatLatencies: [UInt64] = []
    var events = 0

    init(index: Int) { self.index = index }

    func heldOwners(prefix: String) -> [(String, UInt32)] {
        held.map { ("\(prefix)-\(index)-\($0.0)", $0.1) }
    }
}

struct LoadOutcome: Sendable {
    var connections: [ConnectionResult]
    var startNs: UInt64
    var deadlineNs: UInt64
    /// Measured window in seconds: the requested duration, or less when the pool budget ran out first.
    var window: Double
    var budgetExhausted: Bool

    /// The outcome of a run that started at `startNs`: when the pool ran out before the deadline, the window ends
    /// with the last reply to an acquire.
    init(_ results: [ConnectionResult], shared: RunShared, startNs: UInt64, deadlineNs: UInt64) {
        let exhaustedAt = shared.exhaustedAtNs.load(ordering: .relaxed)
        var endNs = deadlineNs
        if exhaustedAt > 0 && exhaustedAt < deadlineNs {
            endNs = min(deadlineNs, max(exhaustedAt, results.map(\.lastReplyNs).max() ?? exhaustedAt))
        }
        connections = results
        self.startNs = startNs
        self.deadlineNs = deadlineNs
        window = Double(endNs - startNs) / 1e9
        budgetExhausted = endNs < deadlineNs
    }
}

struct LatencySummary: Sendable, Encodable {
    var count: Int
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double
    var mean: Double

    enum CodingKeys: String, CodingKey {
        case count, p50, p90, p99, p999 = "p99_9", max, mean
    }

    /// Milliseconds, from nanosecond samples (sorted here).
    init(nanoseconds samples: [UInt64]) {
        let sorted = samples.sorted()
        count = sorted.count
        func pick(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let rank = Swift.max(1, Int((q * Double(sorted.count)).rounded(.up)))
            return Double(sorted[Swift.min(sorted.count, rank) - 1]) / 1e6
        }
        p50 = pick(0.50)
        p90 = pick(0.90)
        p99 = pick(0.99)
        p999 = pick(0.999)
        max = Double(sorted.last ?? 0) / 1e6
        mean = sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count) / 1e6
    }

    var text: String {
        String(format: "p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms", p50, p90, p99, p999, max) + "  (n=\(count))"
    }
}

struct Verification: Sendable, Encodable {
    var ok: Bool
    var acknowledgedHeld: Int
    var listed: Int
    var seconds: Double
    var problems: [String]
}

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
        lines.append("bench \(mode), \(client) client, \(connections) connections x \(pipeline) in flight, \(loop), "
                     + "\(threads) client thread(s)")
        lines.append("network \(network) \(subnet); prefill \(prefillPercent)% (\(prefilled) leases added"
                     + String(format: " in %.2f s)", prefillSeconds))
        lines.append(String(format: "window %.3f s", window)
                     + (budgetExhausted ? " (ended early: the pool's free addresses were used up)" : ""))
        lines.append("acquires: \(acquires)  = " + String(format: "%.0f/s", acquiresPerSecond))
        lines.append("  latency " + acquireLatencyMs.text)
        if let sendLagMs { lines.append("  (of which the client's own send lag: " + sendLagMs.text + ")") }
        if let releaseLatencyMs {
            lines.append("releases: \(releases)  = " + String(format: "%.0f/s", releasesPerSecond))
            lines.append("  latency " + releaseLatencyMs.text)
        }
        lines.append("errors: " + (errors.isEmpty ? "none" : errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))
        let factor = storeCommits > 0 ? Double(storeOperations) / Double(storeCommits) : 0
        lines.append("store: \(storeOperations) operations in \(storeCommits) commits ("
                     + String(format: "%.1f", factor) + " per commit; largest batch so far \(largestBatch))")
        lines.append(String(format: "CPU in the measured phase: bench %.2f s (%.1f us/op)", clientCPUSeconds, clientCPUMicrosPerOperation)
                     + (coordinatorCPUSeconds.map { String(format: ", coordinator %.2f s (%.1f us/op)", $0, coordinatorCPUMicrosPerOperation ?? 0) } ?? ""))
        if let coordinatorRSS {
            lines.append("coordinator memory: VmRSS max \(coordinatorRSS.maxRSS) KiB, last \(coordinatorRSS.lastRSS) KiB, VmHWM \(coordinatorRSS.hwm) KiB")
        }
        lines.append(verification.ok
            ? "verified: \(verification.acknowledgedHeld) acknowledged lease(s) present with their addresses, all unique "
                + "(LEASE-LIST of \(verification.listed) records, " + String(format: "%.1f s)", verification.seconds)
            : "VERIFICATION FAILED: " + verification.problems.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }
}

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
        lines.append("bench agents: \(agents) hosts joined \(network) \(subnet), \(leasesEach) host-bound lease(s) each, "
                     + "heartbeat every \(heartbeatSeconds) s, \(agents) WATCH connections, held \(holdSeconds) s")
        lines.append(String(format: "agents up (join + leases) in %.2f s; watchers up in %.2f s", bringUpSeconds, watchersUpSeconds))
        lines.append("  join      " + join.text)
        if acquire.count > 0 { lines.append("  acquire   " + acquire.text) }
        lines.append("  heartbeat " + heartbeat.text + " (steady state, after every agent and watcher was up)")
        lines.append("events received by watchers: \(eventsReceived)")
        lines.append("coordinator STATS: connections=\(connectionsAtCoordinator) watchers=\(watchersAtCoordinator) "
                     + "hosts-up=\(hostsUp) leases-active=\(leasesActive)")
        func kib(_ v: Int?) -> String { v.map { "\($0) KiB (" + String(format: "%.1f MiB)", Double($0) / 1024) } ?? "n/a" }
        lines.append("coordinator VmRSS: before \(kib(rssBeforeKiB)), steady \(kib(rssSteadyKiB)), max sampled \(kib(rssMaxKiB)); VmHWM \(kib(hwmKiB))")
        lines.append("errors: " + (errors.isEmpty ? "none" : errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))
        return lines.joined(separator: "\n")
    }
}

// MARK: - lean client

struct LoadPlan: Sendable {
    var endpoint: Endpoint
    var secret: String?
    var network: String
    var ownerPrefix: String
    var connections: Int
    var pipeline: Int
    /// Per-connection interval between scheduled acquires (open loop); 0 = closed loop.
    var intervalNs: UInt64
    var release: Bool
    /// Most acquires to send over all connections.
    var budget: Int
    var duration: Double
}

struct AgentPlan: Sendable {
    var endpoint: Endpoint
    var secret: String?
    var network: String
    var hostPrefix: String
    var agents: Int
    var leasesEach: Int
    var heartbeatNs: UInt64
    var holdSeconds: Double
}

/// Shared between the handlers of one run.
final class RunShared: Sendable {
    let budget: Atomic<Int>
    let exhaustedAtNs = Atomic<UInt64>(0)

    init(budget: Int) { self.budget = Atomic(budget) }

    /// Takes one acquire from the budget; false when none is left.
    func take() -> Bool {
        let old = budget.wrappingSubtract(1, ordering: .relaxed).oldValue
        if old <= 0 {
            budget.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        return true
    }
}

final class LeanEngine: Sendable {
    let group: MultiThreadedEventLoopGroup

    init(threads: Int) { group = MultiThreadedEventLoopGroup(numberOfThreads: threads) }

    func shutdown() { try? group.syncShutdownGracefully() }

    private func connect(_ endpoint: Endpoint, on loop: any EventLoop,
                         _ makeHandler: @escaping @Sendable () -> BenchHandler) async throws -> NIOLoopBound<BenchHandler> {
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        return try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: BenchHandler.self), eventLoop: channel.eventLoop)
        }.get()
    }

    func run(_ plan: LoadPlan) async throws -> LoadOutcome {
        let shared = RunShared(budget: plan.budget)
        var handlers: [(NIOLoopBound<BenchHandler>, EventLoopFuture<Void>, EventLoopFuture<ConnectionResult>)] = []
        for index in 0..<plan.connections {
            let loop = group.next()
            let ready = loop.makePromise(of: Void.self)
            let done = loop.makePromise(of: ConnectionResult.self)
            let role = BenchHandler.Role.load(LoadRole(plan: plan, shared: shared))
            let bound = try await connect(plan.endpoint, on: loop) {
                BenchHandler(index: index, role: role, secret: plan.secret, ready: ready, done: done)
            }
            handlers.append((bound, ready.futureResult, done.futureResult))
        }
        for (_, ready, _) in handlers { try await ready.get() }
        let startNs = BenchSupport.nowNs() + 2_000_000
        let deadlineNs = startNs + UInt64(plan.duration * 1e9)
        for (bound, _, _) in handlers {
            bound.eventLoop.execute { bound.value.startLoad(startNs: startNs, deadlineNs: deadlineNs) }
        }
        var results: [ConnectionResult] = []
        for (_, _, done) in handlers { results.append(try await done.get()) }
        return LoadOutcome(results, shared: shared, startNs: startNs, deadlineNs: deadlineNs)
    }

    struct AgentsOutcome: Sendable {
        var bringUpSeconds: Double
        var watchersUpSeconds: Double
        var joinLatencies: [UInt64] = []
        var acquireLatencies: [UInt64] = []
        var heartbeatLatencies: [UInt64] = []
        var events = 0
        var errors: [String: Int] = [:]
        var steadyRSS: (rss: Int, hwm: Int)?
    }

    func runAgents(_ plan: AgentPlan, onSteady: @Sendable () -> (rss: Int, hwm: Int)?) async throws -> AgentsOutcome {
        let started = BenchSupport.nowNs()
        // Agents connect, join and acquire in waves of 64 so the accept backlog is never the bottleneck.
        var agentHandlers: [(NIOLoopBound<BenchHandler>, EventLoopFuture<ConnectionResult>)] = []
        var index = 0
        while index < plan.agents {
            let wave = index..<min(index + 64, plan.agents)
            var readies: [EventLoopFuture<Void>] = []
            for i in wave {
                let loop = group.next()
                let ready = loop.makePromise(of: Void.self)
                let done = loop.makePromise(of: ConnectionResult.self)
                let role = BenchHandler.Role.agent(AgentRole(plan: plan, number: i))
                let bound = try await connect(plan.endpoint, on: loop) {
                    BenchHandler(index: i, role: role, secret: plan.secret, ready: ready, done: done)
                }
                agentHandlers.append((bound, done.futureResult))
                readies.append(ready.futureResult)
            }
            for ready in readies { try await ready.get() }
            index = wave.upperBound
        }
        let agentsUp = BenchSupport.nowNs()
        var watcherHandlers: [(NIOLoopBound<BenchHandler>, EventLoopFuture<ConnectionResult>)] = []
        index = 0
        while index < plan.agents {
            let wave = index..<min(index + 64, plan.agents)
            var readies: [EventLoopFuture<Void>] = []
            for i in wave {
                let loop = group.next()
                let ready = loop.makePromise(of: Void.self)
                let done = loop.makePromise(of: ConnectionResult.self)
                let bound = try await connect(plan.endpoint, on: loop) {
                    BenchHandler(index: i, role: .watcher, secret: plan.secret, ready: ready, done: done)
                }
                watcherHandlers.append((bound, done.futureResult))
                readies.append(ready.futureResult)
            }
            for ready in readies { try await ready.get() }
            index = wave.upperBound
        }
        let watchersUp = BenchSupport.nowNs()
        // Heartbeat latency is reported for the steady state only, not while other agents were still joining.
        for (bound, _) in agentHandlers { bound.eventLoop.execute { bound.value.resetHeartbeats() } }
        try await Task.sleep(for: .seconds(plan.holdSeconds))
        let steady = onSteady()
        for (bound, _) in agentHandlers + watcherHandlers { bound.eventLoop.execute { bound.value.stop() } }
        var outcome = AgentsOutcome(bringUpSeconds: Double(agentsUp - started) / 1e9,
                                    watchersUpSeconds: Double(watchersUp - agentsUp) / 1e9)
        outcome.steadyRSS = steady
        for (_, done) in agentHandlers {
            let r = try await done.get()
            outcome.joinLatencies += r.joinLatencies
            outcome.acquireLatencies += r.acquireLatencies
            outcome.heartbeatLatencies += r.heartbeatLatencies
            for (code, n) in r.errors { outcome.errors[code, default: 0] += n }
        }
        for (_, done) in watcherHandlers {
            let r = try await done.get()
            outcome.events += r.events
            for (code, n) in r.errors { outcome.errors["watch:" + code, default: 0] += n }
        }
        return outcome
    }
}

struct LoadRole: Sendable {
    let plan: LoadPlan
    let shared: RunShared
}

struct AgentRole: Sendable {
    let plan: AgentPlan
    let number: Int
}

/// One benchmark connection. Lives on its event loop only.
final class BenchHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role: Sendable {
        case load(LoadRole)
        case agent(AgentRole)
        case watcher
    }

    enum Phase { case greeting, auth, waiting, running, finished }
    enum Kind: UInt8 { case acquire, release, join, heartbeat, watch }

    struct Pending {
        var kind: Kind
        var seq: Int32
        var t: UInt64
    }

    let index: Int
    let role: Role
    let secret: String?
    let ready: EventLoopPromise<Void>
    let done: EventLoopPromise<ConnectionResult>
    private var readySignalled = false
    private var context: ChannelHandlerContext?
    private var phase = Phase.greeting
    private var inbound: ByteBuffer?
    private var pending = CircularBuffer<Pending>(initialCapacity: 64)
    private var skipRecords = 0
    private var nextSeq: Int32 = 0
    private var startNs: UInt64 = 0
    private var deadlineNs: UInt64 = .max
    private var nextIntendedNs: UInt64 = 0
    private var stopped = false
    private var needsFlush = false
    private var result: ConnectionResult
    private var acquirePrefix: [UInt8] = []
    private var releasePrefix: [UInt8] = []
    private var heartbeatLine: [UInt8] = []
    private var epoch: Int64 = 0
    private var acquiredByAgent = 0
    private var watchTimer: Scheduled<Void>?

    init(index: Int, role: Role, secret: String?, ready: EventLoopPromise<Void>, done: EventLoopPromise<ConnectionResult>) {
        self.index = index
        self.role = role
        self.secret = secret
        self.ready = ready
        self.done = done
        result = ConnectionResult(index: index)
        switch role {
        case .load(let r):
            acquirePrefix = Array("ACQUIRE network=\(r.plan.network) owner=\(r.plan.ownerPrefix)-\(index)-".utf8)
            releasePrefix = Array("RELEASE network=\(r.plan.network) owner=\(r.plan.ownerPrefix)-\(index)-".utf8)
        case .agent(let a):
            let host = "\(a.plan.hostPrefix)-\(a.number)"
            acquirePrefix = Array("ACQUIRE network=\(a.plan.network) host=\(host) owner=\(host)-".utf8)
        case .watcher:
            break
        }
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if inbound == nil {
            inbound = buffer
        } else {
            inbound!.writeBuffer(&buffer)
        }
        var consumed = 0
        inbound!.withUnsafeReadableBytes { bytes in
            var lineStart = 0
            while let newline = Self.findNewline(bytes, from: lineStart) {
                var end = newline
                if end > lineStart && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                handleLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<end]))
                lineStart = newline + 1
            }
            consumed = lineStart
        }
        inbound!.moveReaderIndex(forwardBy: consumed)
        if inbound!.readableBytes == 0 {
            inbound = nil
        } else if inbound!.readerIndex > 1 << 16 {
            inbound!.discardReadBytes()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase != .finished {
            if !pending.isEmpty { result.errors["connection-lost", default: 0] += pending.count }
            if case .watcher = role {} else if !stopped { result.errors["connection-closed-by-coordinator", default: 0] += 1 }
            finish(close: false)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        result.errors["socket-error", default: 0] += 1
        context.close(promise: nil)
    }

    private static func findNewline(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    // MARK: control (called on the event loop)

    func startLoad(startNs: UInt64, deadlineNs: UInt64) {
        guard phase == .waiting, case .load(let r) = role, let context else { return }
        phase = .running
        self.startNs = startNs
        self.deadlineNs = deadlineNs
        let loop = context.eventLoop.assumeIsolated()
        // Give up on replies that never come: the run stays bounded in time.
        watchTimer = loop.scheduleTask(deadline: .uptimeNanoseconds(deadlineNs + 30_000_000_000)) {
            if self.phase != .finished {
                self.result.errors["timeout", default: 0] += self.pending.count
                self.finish(close: true)
            }
        }
        if r.plan.intervalNs == 0 {
            loop.scheduleTask(deadline: .uptimeNanoseconds(startNs)) {
                let now = BenchSupport.nowNs()
                for _ in 0..<r.plan.pipeline where !self.stopped { self.sendAcquire(intended: now) }
                self.flushNow()
                self.maybeFinish()
            }
        } else {
            // Spread the connections' schedules evenly over one interval.
            nextIntendedNs = startNs + r.plan.intervalNs * UInt64(index) / UInt64(max(1, r.plan.connections))
            scheduleTick()
        }
    }

    func resetHeartbeats() { result.heartbeatLatencies.removeAll() }

    func stop() {
        stopped = true
        finish(close: true)
    }

    // MARK: sending

    private func write(_ bytes: [UInt8], suffix: Int32? = nil) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 16)
        buffer.writeBytes(bytes)
        if let suffix { buffer.writeString(String(suffix)) }
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    private func writeLine(_ text: String) {
        write(Array(text.utf8))
    }

    private func flushNow() {
        if needsFlush {
            needsFlush = false
            context?.flush()
        }
    }

    /// Sends one ACQUIRE (load role) unless the deadline passed or the pool budget is spent. Returns whether it did.
    @discardableResult
    private func sendAcquire(intended: UInt64) -> Bool {
        guard case .load(let r) = role else { return false }
        if stopped || BenchSupport.nowNs() >= deadlineNs {
            stopped = true
            return false
        }
        guard r.shared.take() else {
            stopped = true
            _ = r.shared.exhaustedAtNs.compareExchange(expected: 0, desired: BenchSupport.nowNs(), ordering: .relaxed)
            return false
        }
        let seq = nextSeq
        nextSeq += 1
        write(acquirePrefix, suffix: seq)
        pending.append(Pending(kind: .acquire, seq: seq, t: intended))
        return true
    }

    private func scheduleTick() {
        guard let context, case .load(let r) = role else { return }
        context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(nextIntendedNs)) {
            let now = BenchSupport.nowNs()
            while !self.stopped && self.nextIntendedNs <= now {
                if self.nextIntendedNs >= self.deadlineNs { self.stopped = true; break }
                if !self.sendAcquire(intended: self.nextIntendedNs) { break }
                self.result.sendLags.append(now &- self.nextIntendedNs)
                self.nextIntendedNs += r.plan.intervalNs
            }
            if self.nextIntendedNs >= self.deadlineNs { self.stopped = true }
            self.flushNow()
            if self.stopped { self.maybeFinish() } else { self.scheduleTick() }
        }
    }

    private func scheduleHeartbeat(_ delay: UInt64) {
        guard let context else { return }
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay))) {
            guard !self.stopped, self.phase == .running, case .agent(let a) = self.role else { return }
            self.write(self.heartbeatLine)
            self.pending.append(Pending(kind: .heartbeat, seq: 0, t: BenchSupport.nowNs()))
            self.flushNow()
            self.scheduleHeartbeat(a.plan.heartbeatNs)
        }
    }

    private func signalReady() {
        guard !readySignalled else { return }
        readySignalled = true
        ready.succeed(())
    }

    private func finish(close: Bool) {
        guard phase != .finished else { return }
        phase = .finished
        stopped = true
        watchTimer?.cancel()
        if !readySignalled {
            readySignalled = true
            ready.fail(NetleaseError(.unavailable, "bench connection \(index) ended before it was ready: \(result.errors)"))
        }
        if close { context?.close(promise: nil) }
        done.succeed(result)
    }

    private func maybeFinish() {
        guard phase == .running, stopped, pending.isEmpty, case .load = role else { return }
        finish(close: true)
    }

    // MARK: replies

    private func handleLine(_ line: UnsafeRawBufferPointer) {
        if line.isEmpty { return }
        if skipRecords > 0 {
            skipRecords -= 1
            if skipRecords == 0, case .watcher = role { signalReady() }
            return
        }
        switch phase {
        case .greeting:
            if Self.hasPrefix(line, "ERR ") {
                result.errors[Self.errorCode(line), default: 0] += 1
                finish(close: true)
                return
            }
            if let secret {
                phase = .auth
                writeLine("AUTH secret=\(secret)")
                flushNow()
            } else {
                authenticated()
            }
        case .auth:
            guard Self.hasPrefix(line, "OK") else {
                result.errors["auth:" + Self.errorCode(line), default: 0] += 1
                finish(close: true)
                return
            }
            authenticated()
        case .waiting, .finished:
            if case .watcher = role { result.events += 1 }
        case .running:
            if case .watcher = role, pending.isEmpty {
                result.events += 1  // an EVENT line
                return
            }
            guard let p = pending.popFirst() else {
                result.errors["unexpected-reply", default: 0] += 1
                return
            }
            reply(to: p, line: line)
            maybeFinish()
        }
    }

    private func authenticated() {
        switch role {
        case .load:
            phase = .waiting
            signalReady()
        case .agent(let a):
            phase = .running
            let host = "\(a.plan.hostPrefix)-\(a.number)"
            // Underlay addresses 100.64.0.0/10 (shared address space): unique per agent, never routed here.
            let underlay = IPv4Address(0x6440_0000 &+ UInt32(a.number) &+ 1)
            writeLine("JOIN host=\(host) underlay=\(underlay) networks=\(a.plan.network)")
            pending.append(Pending(kind: .join, seq: 0, t: BenchSupport.nowNs()))
            flushNow()
        case .watcher:
            phase = .running
            writeLine("WATCH")
            pending.append(Pending(kind: .watch, seq: 0, t: BenchSupport.nowNs()))
            flushNow()
        }
    }

    private func reply(to p: Pending, line: UnsafeRawBufferPointer) {
        let now = BenchSupport.nowNs()
        result.lastReplyNs = max(result.lastReplyNs, now)
        let ok = Self.hasPrefix(line, "OK")
        switch p.kind {
        case .acquire:
            guard case .load(let r) = role else {
                agentAcquired(ok: ok, line: line, sent: p.t, now: now)
                return
            }
            if ok {
                result.acquireLatencies.append(now &- p.t)
                if now <= deadlineNs { result.acquiresInWindow += 1 }
                let address = Self.address(in: line)
                if r.plan.release {
                    write(releasePrefix, suffix: p.seq)
                    pending.append(Pending(kind: .release, seq: p.seq, t: now))
                } else {
                    result.held.append((p.seq, address))
                    if r.plan.intervalNs == 0 { sendAcquire(intended: now) }
                }
            } else {
                result.errors[Self.errorCode(line), default: 0] += 1
                if r.plan.intervalNs == 0 { sendAcquire(intended: now) }
            }
        case .release:
            if ok {
                result.releaseLatencies.append(now &- p.t)
                if now <= deadlineNs { result.releasesInWindow += 1 }
            } else {
                result.errors["release:" + Self.errorCode(line), default: 0] += 1
                result.releaseFailedSeqs.append(p.seq)
            }
            if case .load(let r) = role, r.plan.intervalNs == 0 { sendAcquire(intended: now) }
        case .join:
            guard ok, case .agent(let a) = role else {
                result.errors["join:" + Self.errorCode(line), default: 0] += 1
                finish(close: true)
                return
            }
            result.joinLatencies.append(now &- p.t)
            epoch = Self.intField(in: line, key: "epoch") ?? 0
            skipRecords = Int(Self.intField(in: line, key: "count") ?? 0)
            let host = "\(a.plan.hostPrefix)-\(a.number)"
            acquirePrefix = Array("ACQUIRE network=\(a.plan.network) host=\(host) epoch=\(epoch) owner=\(host)-".utf8)
            heartbeatLine = Array("HEARTBEAT host=\(host) epoch=\(epoch)".utf8)
            if a.plan.leasesEach == 0 {
                agentReady(a)
            } else {
                for _ in 0..<min(8, a.plan.leasesEach) { agentSendAcquire(a) }
                flushNow()
            }
        case .heartbeat:
            if ok {
                result.heartbeatLatencies.append(now &- p.t)
            } else {
                result.errors["heartbeat:" + Self.errorCode(line), default: 0] += 1
            }
        case .watch:
            guard ok else {
                result.errors["watch:" + Self.errorCode(line), default: 0] += 1
                finish(close: true)
                return
            }
            skipRecords = Int(Self.intField(in: line, key: "count") ?? 0)
            if skipRecords == 0 { signalReady() }
        }
    }

    private func agentSendAcquire(_ a: AgentRole) {
        guard Int(nextSeq) < a.plan.leasesEach else { return }
        let seq = nextSeq
        nextSeq += 1
        write(acquirePrefix, suffix: seq)
        pending.append(Pending(kind: .acquire, seq: seq, t: BenchSupport.nowNs()))
    }

    private func agentAcquired(ok: Bool, line: UnsafeRawBufferPointer, sent: UInt64, now: UInt64) {
        guard case .agent(let a) = role else { return }
        if ok {
            result.acquireLatencies.append(now &- sent)
        } else {
            result.errors["acquire:" + Self.errorCode(line), default: 0] += 1
        }
        acquiredByAgent += 1
        agentSendAcquire(a)
        if acquiredByAgent == a.plan.leasesEach { agentReady(a) }
    }

    private func agentReady(_ a: AgentRole) {
        signalReady()
        // Heartbeats start at a random point of the first interval, as jittered agents would.
        scheduleHeartbeat(UInt64.random(in: 1...max(1, a.plan.heartbeatNs)))
    }

    // MARK: byte parsing

    private static func hasPrefix(_ line: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard line.count >= count else { return false }
        return memcmp(line.baseAddress!, prefix.utf8Start, count) == 0
    }

    /// The code of an `ERR <code> <message>` line.
    private static func errorCode(_ line: UnsafeRawBufferPointer) -> String {
        guard hasPrefix(line, "ERR ") else { return "malformed-reply" }
        var end = 4
        while end < line.count && line[end] != UInt8(ascii: " ") { end += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: line[4..<end]), as: UTF8.self)
    }

    /// Start of the value of ` key=` in a reply line.
    private static func valueStart(in line: UnsafeRawBufferPointer, key: String) -> Int? {
        let needle = Array(" \(key)=".utf8)
        guard line.count >= needle.count else { return nil }
        var i = 0
        outer: while i <= line.count - needle.count {
            for j in 0..<needle.count where line[i + j] != needle[j] {
                i += 1
                continue outer
            }
            return i + needle.count
        }
        return nil
    }

    private static func intField(in line: UnsafeRawBufferPointer, key: String) -> Int64? {
        guard var i = valueStart(in: line, key: key) else { return nil }
        var value: Int64 = 0
        var digits = 0
        while i < line.count, line[i] >= 0x30, line[i] <= 0x39 {
            value = value * 10 + Int64(line[i] - 0x30)
            i += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// The `address=A.B.C.D/P` of a LEASE reply as a 32-bit value (0 when absent).
    private static func address(in line: UnsafeRawBufferPointer) -> UInt32 {
        guard var i = valueStart(in: line, key: "address") else { return 0 }
        var value: UInt32 = 0
        var octet: UInt32 = 0
        while i < line.count {
            let c = line[i]
            if c >= 0x30 && c <= 0x39 {
                octet = octet * 10 + UInt32(c - 0x30)
            } else if c == UInt8(ascii: ".") {
                value = value << 8 | octet
                octet = 0
            } else {
                break
            }
            i += 1
        }
        return value << 8 | octet
    }
}

// MARK: - the library client, for comparison

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
        let startNs = BenchSupport.nowNs() + UInt64(max(0.5, Double(plan.connections) * 0.01) * 1e9)
        let deadlineNs = startNs + UInt64(plan.duration * 1e9)
        let intervalNs = plan.intervalNs
        let results = try await withThrowingTaskGroup(of: ConnectionResult.self) { group in
            for index in 0..<plan.connections {
                group.addTask {
                    try await NetleaseConnection.connect(to: plan.endpoint, secret: plan.secret) { connection in
                        try await runConnection(connection, index: index, shared: shared, startNs: startNs,
                                                deadlineNs: deadlineNs, intervalNs: intervalNs)
                    }
                }
            }
            var all: [ConnectionResult] = []
            for try await r in group { all.append(r) }
            return all.sorted { $0.index < $1.index }
        }
        return LoadOutcome(results, shared: shared, startNs: startNs, deadlineNs: deadlineNs)
    }

    private func one(_ connection: NetleaseConnection, seq: Int32, index: Int, intended: UInt64) async -> Sample {
        var sample = Sample(seq: seq)
        let owner = "\(plan.ownerPrefix)-\(index)-\(seq)"
        do {
            let reply = try await connection.send(.acquire(AcquireRequest(network: plan.network, owner: owner)))
            let now = BenchSupport.nowNs()
            sample.acquire = now &- intended
            sample.acquiredAt = now
            sample.address = reply.fields["address"].flatMap { IPv4Subnet.addressPart($0) } ?? 0
            if plan.release {
                do {
                    _ = try await connection.send(.release(ReleaseRequest(network: plan.network, owner: owner)))
                    sample.release = BenchSupport.nowNs() &- now
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

    private func runConnection(_ connection: NetleaseConnection, index: Int, shared: RunShared, startNs: UInt64,
                               deadlineNs: UInt64, intervalNs: UInt64) async throws -> ConnectionResult {
        func sleep(until ns: UInt64) async throws {
            let now = BenchSupport.nowNs()
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
            guard BenchSupport.nowNs() < deadlineNs else { return false }
            guard shared.take() else {
                _ = shared.exhaustedAtNs.compareExchange(expected: 0, desired: BenchSupport.nowNs(), ordering: .relaxed)
                return false
            }
            return true
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
                            samples.append(await one(connection, seq: seq, index: index, intended: BenchSupport.nowNs()))
                        }
                        return samples
                    }
                }
                for try await samples in group { samples.forEach(absorb) }
            }
        } else {
            try await withThrowingTaskGroup(of: Sample.self) { group in
                var intended = startNs + intervalNs * UInt64(index) / UInt64(max(1, plan.connections))
                var seq: Int32 = 0
                var more = true
                while more && intended < deadlineNs {
                    try await sleep(until: intended)
                    let now = BenchSupport.nowNs()
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

extension IPv4Subnet {
    /// The address of `A.B.C.D/P` as a 32-bit value.
    static func addressPart(_ text: String) -> UInt32? {
        IPv4Address(text.split(separator: "/").first ?? "")?.value
    }
}
