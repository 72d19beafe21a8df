import Foundation
import HostNetwork
import NetleaseLab
import NetleaseClient
import NetleaseCore
import NetleaseWire
import NetleaseTransport

/// The fault harness: client tasks acquire, release and renew against a real coordinator process while the
/// harness `SIGKILL`s and restarts it at random moments. Its log of every acknowledged reply is the only truth the
/// coordinator is held to. After every restart it checks: every acknowledged lease present with its address,
/// every acknowledged release absent, no address held twice, no owner holding two addresses, every host at least
/// at the epoch it was acknowledged.
public struct ChaosRun: Sendable {
    public struct Options: Sendable {
        public var binary: String
        public var directory: String
        public var cycles: Int
        public var clients: Int
        /// Acknowledgements to wait for before a kill, picked at random in this range each cycle.
        public var acknowledgementsPerCycle: ClosedRange<Int>
        public var seed: UInt64

        public init(binary: String, directory: String, cycles: Int, clients: Int = 8,
                    acknowledgementsPerCycle: ClosedRange<Int> = 50...600, seed: UInt64 = .random(in: 0...UInt64.max)) {
            self.binary = binary
            self.directory = directory
            self.cycles = cycles
            self.clients = clients
            self.acknowledgementsPerCycle = acknowledgementsPerCycle
            self.seed = seed
        }
    }

    public struct Summary: Sendable, Equatable, CustomStringConvertible {
        public var cycles = 0
        public var acknowledged = 0
        public var lost = 0
        public var duplicates = 0
        public var resurrected = 0
        public var staleEpochs = 0
        public var problems: [String] = []

        public var ok: Bool { lost == 0 && duplicates == 0 && resurrected == 0 && staleEpochs == 0 && problems.isEmpty }

        public var description: String {
            "cycles=\(cycles) acked=\(acknowledged) lost=\(lost) duplicates=\(duplicates) resurrected=\(resurrected) "
                + "stale-epochs=\(staleEpochs)"
        }
    }

    public let options: Options

    public init(options: Options) { self.options = options }

    /// Runs every cycle; `progress` receives one line per cycle.
    public func run(progress: @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        let data = (options.directory as NSString).appendingPathComponent("data")
        let log = AcknowledgementLog()
        var generator = SplitMix(seed: options.seed)
        var summary = Summary()
        var coordinator = try await Coordinator.start(binary: options.binary, data: data, directory: options.directory)
        defer { coordinator.process.kill9() }
        try await coordinator.connect { c in
            _ = try await c.createNetwork(NetworkSpec(name: "chaos", subnet: IPv4Subnet("172.31.0.0/16")!, cooldown: 0))
        }
        for cycle in 1...options.cycles {
            let endpoint = coordinator.endpoint
            let secret = coordinator.secret
            let clients = options.clients
            let workers = Task {
                await withTaskGroup(of: Void.self) { group in
                    for client in 0..<clients {
                        group.addTask {
                            await Self.work(client: client, cycle: cycle, endpoint: endpoint, secret: secret, log: log)
                        }
                    }
                }
            }
            let wanted = Int.random(in: options.acknowledgementsPerCycle, using: &generator)
            await log.waitFor(more: wanted)
            coordinator.process.kill9()
            await workers.value
            coordinator = try await Coordinator.start(binary: options.binary, data: data, directory: options.directory)
            let found = try await verify(coordinator, log)
            summary.cycles = cycle
            summary.lost += found.lost
            summary.duplicates += found.duplicates
            summary.resurrected += found.resurrected
            summary.staleEpochs += found.staleEpochs
            summary.problems += found.problems.map { "cycle \(cycle): \($0)" }
            summary.acknowledged = await log.acknowledged
            progress("cycle \(cycle): killed after \(wanted)+ acknowledgements; \(summary)")
        }
        _ = coordinator.process.stop()
        return summary
    }

    /// One client: joins as its own host, then acquires host-bound leases, releases every third, heartbeats.
    static func work(client: Int, cycle: Int, endpoint: Endpoint, secret: String, log: AcknowledgementLog) async {
        let host = "chaos-h\(client)"
        try? await NetleaseConnection.connect(to: endpoint, secret: secret) { connection in
            var epoch = await log.epoch(of: host)
            if epoch == nil {
                let joined = try await connection.join(
                    host: host, underlay: IPv4Address(10, 77, 0, UInt8(client + 1)), networks: ["chaos"])
                await log.joined(host, epoch: joined.epoch)
                epoch = joined.epoch
            }
            let claim = HostClaim(host: host, epoch: epoch)
            for index in 0..<1_000_000 {
                let owner = "c\(cycle)-w\(client)-\(index)"
                let lease = try await connection.acquire(AcquireRequest(network: "chaos", owner: owner, claim: claim))
                await log.acquired(owner, lease.address)
                if index % 3 == 2 {
                    let previous = "c\(cycle)-w\(client)-\(index - 1)"
                    await log.releaseSent(previous)
                    try await connection.release(ReleaseRequest(network: "chaos", owner: previous, claim: claim))
                    await log.released(previous)
                }
                if index % 5 == 4 {
                    try await connection.heartbeat(host: host, epoch: epoch!)
                    await log.renewed()
                }
            }
        }
    }

    struct Findings {
        var lost = 0
        var duplicates = 0
        var resurrected = 0
        var staleEpochs = 0
        var problems: [String] = []
    }

    private func verify(_ coordinator: Coordinator, _ log: AcknowledgementLog) async throws -> Findings {
        let (leases, hosts) = try await coordinator.connect { c in
            (try await c.leases(.init(network: "chaos")), try await c.hosts())
        }
        let snapshot = await log.snapshot()
        var findings = Findings()
        let containers = leases.filter { !$0.isBridge }
        findings.duplicates = leases.count - Set(leases.map(\.address)).count
        let owners = Dictionary(grouping: containers, by: \.owner)
        for (owner, held) in owners where held.count > 1 { findings.problems.append("owner \(owner) holds \(held.count)") }
        let byOwner = Dictionary(containers.map { ($0.owner, $0.address) }, uniquingKeysWith: { first, _ in first })
        for (owner, address) in snapshot.held where byOwner[owner] != address && !snapshot.releasing.contains(owner) {
            findings.lost += 1
            if findings.problems.count < 10 {
                findings.problems.append("acknowledged \(owner)=\(address) is \(byOwner[owner].map { "\($0)" } ?? "missing")")
            }
        }
        findings.resurrected = snapshot.released.filter { byOwner[$0] != nil }.count
        for (host, epoch) in snapshot.epochs {
            guard let record = hosts.first(where: { $0.name == host }), record.epoch >= epoch else {
                findings.staleEpochs += 1
                continue
            }
        }
        return findings
    }

    /// A coordinator process of the harness.
    struct Coordinator {
        let process: LabProcess
        let endpoint: Endpoint
        let secret: String

        static func start(binary: String, data: String, directory: String) async throws -> Coordinator {
            let process = try LabProcess(
                argv: [binary, "coordinator", "--listen", "127.0.0.1:0", "--data", data, "--log-level", "error"],
                name: "coordinator", logPath: (directory as NSString).appendingPathComponent("coordinator.log"))
            guard let line = await process.line(containing: "listening on 127.0.0.1:"),
                  let port = Int(line.split(separator: ":").last ?? "") else {
                process.kill9()
                throw NetleaseError(.unavailable, "coordinator did not start: \(process.log)")
            }
            let secret = try String(contentsOfFile: (data as NSString).appendingPathComponent("cluster-secret"),
                                    encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return Coordinator(process: process, endpoint: Endpoint(host: "127.0.0.1", port: port), secret: secret)
        }

        func connect<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
            try await NetleaseConnection.connect(to: endpoint, secret: secret, body)
        }
    }
}

/// Every acknowledgement a chaos client received.
actor AcknowledgementLog {
    private(set) var held: [String: IPv4Address] = [:]
    private(set) var released: Set<String> = []
    /// Releases sent but not acknowledged: the coordinator may or may not have applied them.
    private(set) var releasing: Set<String> = []
    private(set) var epochs: [String: Int64] = [:]
    private(set) var acknowledged = 0
    private var threshold: (count: Int, continuation: CheckedContinuation<Void, Never>)?

    struct Snapshot {
        var held: [String: IPv4Address]
        var released: Set<String>
        var releasing: Set<String>
        var epochs: [String: Int64]
    }

    func snapshot() -> Snapshot { Snapshot(held: held, released: released, releasing: releasing, epochs: epochs) }

    func epoch(of host: String) -> Int64? { epochs[host] }

    func joined(_ host: String, epoch: Int64) {
        epochs[host] = epoch
        count()
    }

    func acquired(_ owner: String, _ address: IPv4Address) {
        held[owner] = address
        count()
    }

    func releaseSent(_ owner: String) { releasing.insert(owner) }

    func released(_ owner: String) {
        releasing.remove(owner)
        held[owner] = nil
        released.insert(owner)
        count()
    }

    func renewed() { count() }

    private func count() {
        acknowledged += 1
        if let threshold, acknowledged >= threshold.count {
            self.threshold = nil
            threshold.continuation.resume()
        }
    }

    /// Returns once `count` more acknowledgements arrived.
    func waitFor(more count: Int) async {
        let target = acknowledged + count
        await withCheckedContinuation { continuation in
            if acknowledged >= target { continuation.resume() } else { threshold = (target, continuation) }
        }
    }
}

/// A small seeded generator, so a failing run can be repeated with `--seed`.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
