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
/// coordinator is held to. With several coordinators on one PostgreSQL database the clients reach the leader
/// through the client library's leader following, and each kill is of the leader: a standby takes over, the killed
/// one starts again and stands by; the time from each kill to the first acknowledged acquire is recorded.
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
        /// Coordinator processes; more than one need `store`.
        public var coordinators: Int
        /// `postgres://…` shared by the coordinators; nil: one coordinator on its SQLite file.
        public var store: String?

        public init(
            binary: String,
            directory: String,
            cycles: Int,
            clients: Int = 8,
            acknowledgementsPerCycle: ClosedRange<Int> = 50...600,
            seed: UInt64 = .random(in: 0...UInt64.max),
            progressDeadline: Duration = .seconds(60),
            coordinators: Int = 1,
            store: String? = nil
        ) {
            self.binary = binary
            self.directory = directory
            self.cycles = cycles
            self.clients = clients
            self.acknowledgementsPerCycle = acknowledgementsPerCycle
            self.seed = seed
            self.progressDeadline = progressDeadline
            self.coordinators = coordinators
            self.store = store
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
        /// Coordinator processes (several: on one PostgreSQL database, the leader killed each cycle).
        public var coordinators = 1
        /// Per kill: from the `SIGKILL` to the first acknowledged acquire (a restart on SQLite, a takeover on
        /// PostgreSQL).
        public var outages: [Duration] = []

        public var ok: Bool {
            lost == 0 && duplicates == 0 && resurrected == 0 && staleEpochs == 0 && unexpectedErrors == 0
                && problems.isEmpty
        }

        public var description: String {
            let counts =
                "acked=\(acknowledged) lost=\(lost) duplicates=\(duplicates) "
                + "resurrected=\(resurrected) stale-epochs=\(staleEpochs) unexpected-errors=\(unexpectedErrors)"
            guard coordinators > 1 else { return "seed=\(seed) cycles=\(cycles) " + counts }
            let sorted = outages.sorted()
            let median = sorted.isEmpty ? Duration.zero : sorted[sorted.count / 2]
            return "seed=\(seed) coordinators=\(coordinators) leader-kills=\(cycles) " + counts
                + " failover-median=\(Self.milliseconds(median)) failover-max=\(Self.milliseconds(sorted.last ?? .zero))"
        }

        static func milliseconds(_ duration: Duration) -> String {
            let (seconds, attoseconds) = duration.components
            return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms"
        }
    }

    public static let network = "chaos"
    static let subnet = IPv4Subnet("172.31.0.0/16")!

    public let options: Options

    public init(options: Options) { self.options = options }

    /// Runs every cycle; `progress` receives one line per cycle.
    public func run(progress: @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        let log = AcknowledgementLog()
        var generator = SplitMix(seed: options.seed)
        var summary = Summary()
        summary.seed = options.seed
        summary.coordinators = options.coordinators
        let cluster = try await ChaosCluster.start(
            binary: options.binary,
            directory: options.directory,
            count: options.coordinators,
            store: options.store
        )
        defer { cluster.killAll() }
        try await cluster.connectToLeader { c in
            _ = try await c.createNetwork(NetworkSpec(name: Self.network, subnet: Self.subnet, cooldown: 0))
        }
        for cycle in 1...options.cycles {
            let endpoints = cluster.endpoints
            let secret = cluster.secret
            let clients = options.clients
            let adminSeed = generator.next()
            await log.startCycle()
            let workers = Task {
                await withTaskGroup(of: Void.self) { group in
                    for client in 0..<clients {
                        group.addTask {
                            await Self.work(
                                client: client,
                                cycle: cycle,
                                endpoints: endpoints,
                                secret: secret,
                                log: log
                            )
                        }
                    }
                    group.addTask {
                        await Self.administer(
                            cycle: cycle,
                            seed: adminSeed,
                            endpoints: endpoints,
                            secret: secret,
                            log: log
                        )
                    }
                }
                await log.workersEnded()
            }
            let wanted = Int.random(in: options.acknowledgementsPerCycle, using: &generator)
            let reached = await log.waitFor(more: wanted, deadline: options.progressDeadline)
            let killed = try await cluster.killLeader()
            let killedAt = ContinuousClock.now
            await workers.value
            if !reached {
                summary.problems.append(
                    "cycle \(cycle): fewer than \(wanted) acknowledgements within \(options.progressDeadline)"
                )
            }
            // One coordinator comes back by its restart; of several, a standby takes over while the killed one is
            // still down, and it starts again (to stand by) only after that.
            if options.coordinators == 1 { try await cluster.restart(killed) }
            if let outage = await firstAcknowledgement(cycle: cycle, cluster: cluster, log: log, since: killedAt) {
                summary.outages.append(outage)
            } else {
                summary.problems.append("cycle \(cycle): no acquire acknowledged within \(options.progressDeadline)")
            }
            if options.coordinators > 1 { try await cluster.restart(killed) }
            let found = try await verify(cluster, log)
            let live = await log.liveFindings()
            summary.cycles = cycle
            summary.lost += found.lost
            summary.resurrected += found.resurrected
            summary.staleEpochs += found.staleEpochs
            summary.duplicates = live.duplicates
            summary.unexpectedErrors = live.unexpectedErrors
            summary.problems += found.problems.map { "cycle \(cycle): \($0)" }
            summary.acknowledged = await log.acknowledged
            let failover =
                options.coordinators > 1 && summary.outages.count == cycle
                ? ", failover \(Summary.milliseconds(summary.outages[cycle - 1]))" : ""
            progress("cycle \(cycle): killed after \(wanted)+ acknowledgements\(failover); \(summary)")
            if !live.problems.isEmpty { summary.problems += live.problems }
            if summary.problems.count > 50 { break }
        }
        cluster.stopAll()
        return summary
    }

    /// Acquires one lease through the leader following until it is acknowledged; the time since `since`, or nil
    /// when nothing was acknowledged within the progress deadline.
    private func firstAcknowledgement(
        cycle: Int,
        cluster: ChaosCluster,
        log: AcknowledgementLog,
        since: ContinuousClock.Instant
    ) async -> Duration? {
        let owner = "failover-c\(cycle)"
        while ContinuousClock.now - since < options.progressDeadline {
            do {
                let lease = try await cluster.connectToLeader { connection in
                    try await connection.within(.seconds(5), "acquire") {
                        try await connection.acquire(AcquireRequest(network: Self.network, owner: owner))
                    }
                }
                let outage = ContinuousClock.now - since
                await log.acquired(owner, lease.address)
                return outage
            } catch let error as NetleaseError where [.unavailable, .notLeader, .storage].contains(error.code) {
                try? await Task.sleep(for: .milliseconds(20))
            } catch {
                await log.unexpected("acquire \(owner) after the kill: \(error)")
                return nil
            }
        }
        return nil
    }

    /// Runs `body`, recording how it failed: a dropped connection (the kill) is expected, and so is `not-leader` (a
    /// coordinator that does not lead — a standby, or a leader whose lease ran out — changes nothing); another error
    /// reply is expected only when `expected` says so, and is a finding otherwise.
    static func attempt(
        _ what: String,
        log: AcknowledgementLog,
        expected: (NetleaseError) -> Bool = { _ in false },
        _ body: () async throws -> Void
    ) async -> Bool {
        do {
            try await body()
            return true
        } catch let error as NetleaseError where error.code == .unavailable || error.code == .notLeader {
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
    static func work(client: Int, cycle: Int, endpoints: [Endpoint], secret: String, log: AcknowledgementLog) async {
        let host = "chaos-h\(client)"
        _ = await attempt("client \(client)", log: log) {
            try await NetleaseConnection.connectToLeader(among: endpoints, secret: secret) { connection in
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
        endpoints: [Endpoint],
        secret: String,
        log: AcknowledgementLog
    )
        async
    {
        var generator = SplitMix(seed: seed)
        let refused: (NetleaseError) -> Bool = { $0.code == .conflict || $0.code == .notFound }
        _ = await attempt("admin", log: log) {
            try await NetleaseConnection.connectToLeader(among: endpoints, secret: secret) { c in
                let reporter = "chaos-admin"
                // A leader-only request first, so that a standby's `not-leader` reaches `connectToLeader`, which
                // follows it, rather than one of the attempts below, which would take it as this step's outcome.
                _ = try await c.networks()
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
                        ), state == .conflict {
                            await log.acknowledged(.conflict(address))
                        } else if state == .reserved {
                            // Answered with the reservation: the address is reserved, also when the RESERVE that
                            // made it lost its reply to a kill (it was only uncertain until now).
                            await log.settled(.conflict(address))
                            await log.acknowledged(.reserve(address))
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

    private func verify(_ cluster: ChaosCluster, _ log: AcknowledgementLog) async throws -> Findings {
        _ = try await cluster.leader(within: options.progressDeadline)
        let (leases, hosts, networks) = try await cluster.connectToLeader { c in
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
}
