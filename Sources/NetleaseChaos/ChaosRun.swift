import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseLab
import NetleaseTransport
import NetleaseWire

/// The fault harness: client tasks acquire, release and renew — and an admin task reserves addresses, reports
/// conflicts, creates and deletes networks and removes hosts — against a real coordinator process while the
/// harness `SIGKILL`s and restarts it at random moments. Its log of every acknowledged reply is the only truth the
/// coordinator is held to.
///
/// Checked while it runs: no address acknowledged to two owners while both hold it (`duplicates`), no reserved or
/// quarantined address handed out, no error reply a correct coordinator would not send. Checked after every
/// restart: every acknowledged lease present with its address (`lost`), every acknowledged release absent
/// (`resurrected`), every acknowledged reservation, quarantine, network change and host removal in place, every
/// host at least at the epoch it was acknowledged. A request whose reply was lost to the kill may or may not have
/// taken effect; either outcome is accepted, nothing else.
public struct ChaosRun: Sendable {
    public struct Options: Sendable {
        public var binary: String
        public var directory: String
        public var cycles: Int
        public var clients: Int
        /// Acknowledgements to wait for before a kill, picked at random in this range each cycle.
        public var acknowledgementsPerCycle: ClosedRange<Int>
        /// Every random choice of the run comes from this seed, so a failing run can be repeated.
        public var seed: UInt64
        /// Longest wait for a cycle's acknowledgements; a cycle that makes no progress for this long is a failure.
        public var progressDeadline: Duration

        public init(
            binary: String,
            directory: String,
            cycles: Int,
            clients: Int = 8,
            acknowledgementsPerCycle: ClosedRange<Int> = 50...600,
            seed: UInt64 = .random(in: 0...UInt64.max),
            progressDeadline: Duration = .seconds(60)
        ) {
            self.binary = binary
            self.directory = directory
            self.cycles = cycles
            self.clients = clients
            self.acknowledgementsPerCycle = acknowledgementsPerCycle
            self.seed = seed
            self.progressDeadline = progressDeadline
        }
    }

    public struct Summary: Sendable, Equatable, CustomStringConvertible {
        public var seed: UInt64 = 0
        public var cycles = 0
        public var acknowledged = 0
        public var lost = 0
        /// Addresses acknowledged to two owners while both held them.
        public var duplicates = 0
        public var resurrected = 0
        public var staleEpochs = 0
        /// Error replies a correct coordinator never sends to these requests.
        public var unexpectedErrors = 0
        public var problems: [String] = []

        public var ok: Bool {
            lost == 0 && duplicates == 0 && resurrected == 0 && staleEpochs == 0 && unexpectedErrors == 0
                && problems.isEmpty
        }

        public var description: String {
            "seed=\(seed) cycles=\(cycles) acked=\(acknowledged) lost=\(lost) duplicates=\(duplicates) "
                + "resurrected=\(resurrected) stale-epochs=\(staleEpochs) unexpected-errors=\(unexpectedErrors)"
        }
    }

    public static let network = "chaos"
    static let subnet = IPv4Subnet("172.31.0.0/16")!

    public let options: Options

    public init(options: Options) { self.options = options }

    /// Runs every cycle; `progress` receives one line per cycle.
    public func run(progress: @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        let data = (options.directory as NSString).appendingPathComponent("data")
        let log = AcknowledgementLog()
        var generator = SplitMix(seed: options.seed)
        var summary = Summary()
        summary.seed = options.seed
        var coordinator = try await Coordinator.start(binary: options.binary, data: data, directory: options.directory)
        defer { coordinator.process.kill9() }
        try await coordinator.connect { c in
            _ = try await c.createNetwork(NetworkSpec(name: Self.network, subnet: Self.subnet, cooldown: 0))
        }
        for cycle in 1...options.cycles {
            let endpoint = coordinator.endpoint
            let secret = coordinator.secret
            let clients = options.clients
            let adminSeed = generator.next()
            await log.startCycle()
            let workers = Task {
                await withTaskGroup(of: Void.self) { group in
                    for client in 0..<clients {
                        group.addTask {
                            await Self.work(client: client, cycle: cycle, endpoint: endpoint, secret: secret, log: log)
                        }
                    }
                    group.addTask {
                        await Self.administer(
                            cycle: cycle,
                            seed: adminSeed,
                            endpoint: endpoint,
                            secret: secret,
                            log: log
                        )
                    }
                }
                await log.workersEnded()
            }
            let wanted = Int.random(in: options.acknowledgementsPerCycle, using: &generator)
            let reached = await log.waitFor(more: wanted, deadline: options.progressDeadline)
            coordinator.process.kill9()
            await workers.value
            if !reached {
                summary.problems.append(
                    "cycle \(cycle): fewer than \(wanted) acknowledgements within \(options.progressDeadline)"
                )
            }
            coordinator = try await Coordinator.start(binary: options.binary, data: data, directory: options.directory)
            let found = try await verify(coordinator, log)
            let live = await log.liveFindings()
            summary.cycles = cycle
            summary.lost += found.lost
            summary.resurrected += found.resurrected
            summary.staleEpochs += found.staleEpochs
            summary.duplicates = live.duplicates
            summary.unexpectedErrors = live.unexpectedErrors
            summary.problems += found.problems.map { "cycle \(cycle): \($0)" }
            summary.acknowledged = await log.acknowledged
            progress("cycle \(cycle): killed after \(wanted)+ acknowledgements; \(summary)")
            if !live.problems.isEmpty { summary.problems += live.problems }
            if summary.problems.count > 50 { break }
        }
        _ = coordinator.process.stop()
        return summary
    }

    /// Runs `body`, recording how it failed: a dropped connection (the kill) is expected; an error reply is
    /// expected only when `expected` says so, and is a finding otherwise.
    static func attempt(
        _ what: String,
        log: AcknowledgementLog,
        expected: (NetleaseError) -> Bool = { _ in false },
        _ body: () async throws -> Void
    ) async -> Bool {
        do {
            try await body()
            return true
        } catch let error as NetleaseError where error.code == .unavailable {
            return false
        } catch let error as NetleaseError where expected(error) {
            return false
        } catch {
            await log.unexpected("\(what): \(error)")
            return false
        }
    }

    /// One client: joins as its own host, then acquires host-bound leases, releases every third, heartbeats.
    /// Ends when its connection drops (the kill) or a request fails.
    static func work(client: Int, cycle: Int, endpoint: Endpoint, secret: String, log: AcknowledgementLog) async {
        let host = "chaos-h\(client)"
        _ = await attempt("client \(client)", log: log) {
            try await NetleaseConnection.connect(to: endpoint, secret: secret) { connection in
                var epoch = await log.epoch(of: host)
                if epoch == nil {
                    let joined = try await connection.join(
                        host: host,
                        underlay: IPv4Address(10, 77, 0, UInt8(client + 1)),
                        networks: [network]
                    )
                    await log.joined(host, epoch: joined.epoch)
                    epoch = joined.epoch
                }
                let claim = HostClaim(host: host, epoch: epoch)
                for index in 0..<1_000_000 {
                    let owner = "c\(cycle)-w\(client)-\(index)"
                    let lease = try await connection.acquire(
                        AcquireRequest(network: network, owner: owner, claim: claim)
                    )
                    await log.acquired(owner, lease.address)
                    if index % 3 == 2 {
                        let previous = "c\(cycle)-w\(client)-\(index - 1)"
                        await log.releaseSent(previous)
                        try await connection.release(ReleaseRequest(network: network, owner: previous, claim: claim))
                        await log.released(previous)
                    }
                    if index % 5 == 4 {
                        try await connection.heartbeat(host: host, epoch: epoch!)
                        await log.renewed()
                    }
                }
            }
        }
    }

    /// The admin: in random order, reserves an address, quarantines one as a conflict, creates a network, deletes
    /// one it created, and removes a host it joined (with a lease) — until its connection drops.
    static func administer(
        cycle: Int,
        seed: UInt64,
        endpoint: Endpoint,
        secret: String,
        log: AcknowledgementLog
    )
        async
    {
        var generator = SplitMix(seed: seed)
        let refused: (NetleaseError) -> Bool = { $0.code == .conflict || $0.code == .notFound }
        _ = await attempt("admin", log: log) {
            try await NetleaseConnection.connect(to: endpoint, secret: secret) { c in
                let reporter = "chaos-admin"
                var epoch = await log.epoch(of: reporter)
                if epoch == nil {
                    epoch = try await c.join(host: reporter, underlay: IPv4Address(10, 78, 0, 1)).epoch
                    await log.joined(reporter, epoch: epoch!)
                }
                for step in 0..<10_000 {
                    // The top /20 of the subnet: the allocator hands out low addresses first, so these are
                    // rarely held; when one is, the refusal (`conflict`) is the correct answer.
                    let address = IPv4Address(
                        subnet.network.value | UInt32(0xF000 + Int.random(in: 0..<0x0FFE, using: &generator))
                    )
                    switch Int.random(in: 0..<5, using: &generator) {
                    case 0:
                        await log.pending(.reserve(address))
                        if await attempt(
                            "reserve \(address)",
                            log: log,
                            expected: refused,
                            {
                                _ = try await c.reserve(network: network, address: address, note: "chaos")
                            }
                        ) {
                            await log.acknowledged(.reserve(address))
                        } else {
                            await log.settled(.reserve(address))
                        }
                    case 1:
                        let claim = HostClaim(host: reporter, epoch: epoch)
                        await log.pending(.conflict(address))
                        var state: LeaseState?
                        if await attempt(
                            "report-conflict \(address)",
                            log: log,
                            expected: refused,
                            {
                                state = try await c.reportConflict(
                                    network: network,
                                    address: address,
                                    mac: "02:00:00:00:00:01",
                                    claim: claim
                                ).state
                            }
                        ), state == .conflict || state == .reserved {
                            await log.acknowledged(.conflict(address))
                        } else {
                            await log.settled(.conflict(address))
                        }
                    case 2:
                        let (name, index) = await log.nextNetwork()
                        let subnet = IPv4Subnet(
                            network: IPv4Address(10, UInt8(100 + index / 256 % 100), UInt8(index % 256), 0),
                            prefix: 24
                        )!
                        await log.pending(.networkCreated(name))
                        _ = try await c.createNetwork(NetworkSpec(name: name, subnet: subnet))
                        await log.acknowledged(.networkCreated(name))
                    case 3:
                        guard let name = await log.someCreatedNetwork() else { continue }
                        await log.pending(.networkDeleted(name))
                        try await c.deleteNetwork(name)
                        await log.acknowledged(.networkDeleted(name))
                    default:
                        let (_, index) = await log.nextNetwork()
                        let host = "chaos-x\(cycle)-\(step)"
                        let underlay = IPv4Address(10, 79, UInt8(index / 256 % 256), UInt8(index % 256))
                        let joined = try await c.join(host: host, underlay: underlay, networks: [network])
                        await log.joined(host, epoch: joined.epoch)
                        let owner = "x\(cycle)-\(step)"
                        let lease = try await c.acquire(
                            AcquireRequest(
                                network: network,
                                owner: owner,
                                claim: HostClaim(host: host, epoch: joined.epoch)
                            )
                        )
                        await log.acquired(owner, lease.address)
                        await log.pending(.hostRemoved(host, owner: owner))
                        _ = try await c.removeHost(host)
                        await log.acknowledged(.hostRemoved(host, owner: owner))
                    }
                }
            }
        }
    }

    struct Findings {
        var lost = 0
        var resurrected = 0
        var staleEpochs = 0
        var problems: [String] = []

        mutating func problem(_ text: String) {
            if problems.count < 20 { problems.append(text) }
        }
    }

    private func verify(_ coordinator: Coordinator, _ log: AcknowledgementLog) async throws -> Findings {
        let (leases, hosts, networks) = try await coordinator.connect { c in
            (try await c.leases(.init(network: Self.network)), try await c.hosts(), try await c.networks())
        }
        let snapshot = await log.snapshot()
        var findings = Findings()
        let containers = leases.filter { !$0.isBridge && $0.state == .active }
        let byAddress = Dictionary(grouping: leases, by: \.address)
        for (address, records) in byAddress where records.count > 1 {
            findings.problem("address \(address) listed \(records.count) times")
        }
        let owners = Dictionary(grouping: containers, by: \.owner)
        for (owner, held) in owners where held.count > 1 { findings.problem("owner \(owner) holds \(held.count)") }
        let byOwner = Dictionary(containers.map { ($0.owner, $0.address) }, uniquingKeysWith: { first, _ in first })
        for (owner, address) in snapshot.held where byOwner[owner] != address && !snapshot.releasing.contains(owner) {
            findings.lost += 1
            findings.problem("acknowledged \(owner)=\(address) is \(byOwner[owner].map { "\($0)" } ?? "missing")")
        }
        findings.resurrected = snapshot.released.filter { byOwner[$0] != nil }.count
        for (host, epoch) in snapshot.epochs where !snapshot.removedHosts.contains(host) {
            guard let record = hosts.first(where: { $0.name == host }), record.epoch >= epoch else {
                findings.staleEpochs += 1
                continue
            }
        }
        for address in snapshot.reserved where byAddress[address]?.first?.state != .reserved {
            findings.lost += 1
            findings.problem(
                "acknowledged reservation of \(address) is \(byAddress[address]?.first?.state.rawValue ?? "gone")"
            )
        }
        for address in snapshot.quarantined where byAddress[address]?.first?.state != .conflict {
            findings.lost += 1
            findings.problem(
                "acknowledged conflict at \(address) is \(byAddress[address]?.first?.state.rawValue ?? "gone")"
            )
        }
        let names = Set(networks.map(\.spec.name))
        for name in snapshot.networks where !names.contains(name) {
            findings.lost += 1
            findings.problem("acknowledged network \(name) is missing")
        }
        for name in snapshot.deletedNetworks where names.contains(name) {
            findings.resurrected += 1
            findings.problem("deleted network \(name) is back")
        }
        for host in snapshot.removedHosts where hosts.contains(where: { $0.name == host }) {
            findings.resurrected += 1
            findings.problem("removed host \(host) is back")
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
                name: "coordinator",
                logPath: (directory as NSString).appendingPathComponent("coordinator.log")
            )
            guard let line = await process.line(containing: "listening on 127.0.0.1:"),
                let port = Int(line.split(separator: ":").last ?? "")
            else {
                process.kill9()
                throw NetleaseError(.unavailable, "coordinator did not start: \(process.log)")
            }
            let secret = try String(
                contentsOfFile: (data as NSString).appendingPathComponent("cluster-secret"),
                encoding: .utf8
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            return Coordinator(process: process, endpoint: Endpoint(host: "127.0.0.1", port: port), secret: secret)
        }

        func connect<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
            try await NetleaseConnection.connect(to: endpoint, secret: secret, body)
        }
    }
}
