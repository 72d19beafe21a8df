import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTransport
import NetleaseWire

// `netlease bench`: a load generator over the real wire protocol (TCP, loopback only).
//
// Two clients:
// - `lean` (default): one NIO channel handler per connection (`BenchHandler`). Its hot requests are rendered once
//   per connection (`RequestTemplate`) and its hot replies read in place (`ReplyHeadView`), both from NetleaseWire:
//   no Swift concurrency per request, no String per reply.
// - `standard`: the project's `NetleaseConnection` (async/await, one task per request in flight), to show what the
//   library client itself costs.
// Latency is measured from the time a request was *meant* to go out (open loop: its scheduled time, so a stalled
// coordinator is not hidden by coordinated omission; closed loop: the time it was written) to the time its reply
// line was read. Every latency sample is kept; percentiles come from the sorted array.

/// One `netlease bench` invocation: the options, the coordinator to load, and a run id that names what it creates.
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

    /// Runs the mode the options select: agent start, agents, or acquire load. Throws `BenchVerificationFailed`
    /// when a load run's verification failed (after printing its report).
    public func run() async throws {
        if let peers = agentStartPeers {
            try await runAgentStart(peers: peers, runs: runs)
        } else if agents > 0 {
            try await runAgents()
        } else if try await !runLoad().verification.ok {
            throw BenchVerificationFailed()
        }
    }

    func log(_ text: String) {
        FileHandle.standardError.write(Data("bench: \(text)\n".utf8))
    }

    /// Where the load goes.
    var target: BenchTarget { BenchTarget(endpoint: endpoint, secret: secret, network: network) }

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
        return (
            try stats.int("store-operations") ?? 0, try stats.int("store-commits") ?? 0,
            try stats.int("store-largest-batch") ?? 0
        )
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
                group.addTask { try await admin { try await Self.release(mine, network: network, on: $0) } }
            }
            try await group.waitForAll()
        }
        let seconds = Self.seconds(ContinuousClock.now - started)
        log("released \(owners.count) lease(s) made by the bench in \(String(format: "%.1f", seconds)) s")
    }

    /// Releases `owners` on one connection, 32 in flight at a time; a failed release is not retried.
    private static func release(
        _ owners: [String],
        network: String,
        on connection: NetleaseConnection
    )
        async throws
    {
        var index = 0
        while index < owners.count {
            let chunk = owners[index..<min(index + 32, owners.count)]
            try await withThrowingTaskGroup(of: Void.self) { sends in
                for owner in chunk {
                    sends.addTask { _ = try? await connection.release(ReleaseRequest(network: network, owner: owner)) }
                }
                try await sends.waitForAll()
            }
            index += 32
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
