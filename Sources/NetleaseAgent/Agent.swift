import Foundation
import HostNetwork
import Logging
import NetleaseClient
import NetleaseCore
import NetleaseWire
import ServiceLifecycle
import Synchronization
import NetleaseTransport

/// One host's agent.
///
/// Start: connect and authenticate (coordinators tried round robin, exponential backoff with jitter) → join (epoch,
/// bridge addresses) → read the network definitions → watch the host list on a second connection → build bridge and
/// tunnel mesh for every network and verify it → reconcile the leases this host recorded → only then open the local
/// API. Afterwards: heartbeats (jittered), mesh updates on host events. A lost connection or a `stale-epoch` starts
/// the cycle again; the local API stays open and answers `unavailable` while disconnected. Stop leaves the host
/// network and containers working unless `teardownOnStop`.
public final class Agent: Service, Sendable {
    public let configuration: AgentConfiguration
    let hostNetwork: any HostNetworking
    let prober: any ARPProber
    let logger: Logger
    let files = LocalFileSystem()
    let leases: LocalLeaseFile
    private let state = Mutex(Runtime())
    private let readyHandler: @Sendable (String) -> Void

    /// The live session with the coordinator, present only while connected and the host network is verified.
    struct Session: Sendable {
        var connection: NetleaseConnection
        var epoch: Int64
        var networks: [String: NetworkContext]
        var claim: HostClaim
    }

    struct NetworkContext: Sendable, Equatable {
        var spec: NetworkSpec
        var bridgeAddress: IPv4Address
        var config: HostNetworkConfig
        var mtu: Int
    }

    struct Runtime: Sendable {
        var session: Session?
        var directory: PeerDirectory?
        var disagreements: [String] = []
        var lastError: String?
        /// The coordinator store seen at the last join, and what changed about it (restore, replacement).
        var store: StoreMark?
        var storeWarning: String?
        /// Leases the coordinator had no record of at the last reconnect and recorded again.
        var readopted = 0
        /// The last session ended because the coordinator declared this host lost (or fenced it): then readopted
        /// leases are expected, not a sign of lost coordinator data.
        var fenced = false
    }

    struct StoreMark: Codable, Sendable, Equatable {
        var id: String
        var generation: Int64
    }

    /// - Parameter onReady: called with the socket path once the local API listens (after the first full setup).
    public init(
        configuration: AgentConfiguration, hostNetwork: any HostNetworking, prober: any ARPProber,
        logger: Logger = Logger(label: "netlease.agent"), onReady: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        guard !configuration.coordinators.isEmpty else { throw NetleaseError.badRequest("no coordinator address") }
        guard !configuration.networks.isEmpty else { throw NetleaseError.badRequest("no network to serve") }
        guard Names.isValid(configuration.host) else {
            throw NetleaseError.badRequest("host name '\(configuration.host)' must be letters, digits, '-', '_' or '.'")
        }
        self.configuration = configuration
        self.hostNetwork = hostNetwork
        self.prober = prober
        self.logger = logger
        self.readyHandler = onReady
        leases = try LocalLeaseFile(directory: configuration.stateDirectory, files: files)
    }

    // MARK: lifecycle

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await self.runSessions() }
        if configuration.teardownOnStop { await teardown() }
        logger.info("agent stopped", metadata: ["teardown": "\(configuration.teardownOnStop)"])
    }

    /// Connects, serves, reconnects — until cancelled. The local API starts after the first full setup.
    private func runSessions() async throws {
            try await withThrowingDiscardingTaskGroup { group in
                var apiStarted = false
                var failures = 0
                var index = 0
                while !Task.isCancelled {
                    let endpoint = configuration.coordinators[index % configuration.coordinators.count]
                    do {
                        try await session(with: endpoint) {
                            failures = 0
                            if !apiStarted {
                                apiStarted = true
                                group.addTask { try await self.serveLocalAPI() }
                            }
                        }
                    } catch {
                        if Task.isCancelled { break }
                        let text = (error as? NetleaseError)?.description ?? "\(error)"
                        let fenced = (error as? NetleaseError)?.code == .staleEpoch
                        state.withLock {
                            $0.lastError = text
                            if fenced { $0.fenced = true }
                        }
                        logger.warning("coordinator session ended", metadata: ["coordinator": "\(endpoint)", "error": "\(text)"])
                    }
                    state.withLock { $0.session = nil }
                    failures += 1
                    index += 1
                    try await Task.sleep(for: reconnectDelay(after: failures))
                }
            }
    }

    func reconnectDelay(after failures: Int) -> Duration {
        let range = configuration.reconnectDelay
        let exponent = min(max(failures - 1, 0), 16)
        let base = min(range.lowerBound * (1 << exponent), range.upperBound)
        return base * Double.random(in: 0.5...1.0)
    }

    /// One connection's life: join, build, verify, reconcile, then heartbeat and follow events until something fails.
    private func session(with endpoint: Endpoint, onReady: () -> Void) async throws {
        let secret = configuration.secret
        let tls = configuration.tls
        try await NetleaseConnection.connect(to: endpoint, secret: secret, tls: tls) { control in
            let join = try await control.join(
                host: configuration.host, underlay: configuration.underlay, networks: configuration.networks)
            let claim = HostClaim(host: configuration.host, epoch: join.epoch)
            logger.info("joined the cluster", metadata: ["coordinator": "\(endpoint)", "epoch": "\(join.epoch)"])
            noteStore(StoreMark(id: join.store, generation: join.generation))
            var specs: [String: NetworkSpec] = [:]
            for name in configuration.networks { specs[name] = try await control.network(name).spec }
            try await NetleaseConnection.connect(to: endpoint, secret: secret, tls: tls) { watcher in
                let (hosts, events) = try await watcher.watch()
                let directory = PeerDirectory(me: configuration.host, hosts: hosts)
                var contexts: [String: NetworkContext] = [:]
                for name in configuration.networks {
                    guard let bridge = join.bridges.first(where: { $0.network == name }), let spec = specs[name] else {
                        throw NetleaseError(.internalError, "the coordinator gave no bridge address for '\(name)'")
                    }
                    contexts[name] = try await configure(spec: spec, bridgeAddress: bridge.address,
                                                         peers: directory.peers(of: name))
                }
                state.withLock {
                    $0.session = Session(connection: control, epoch: join.epoch, networks: contexts, claim: claim)
                    $0.directory = directory
                    $0.lastError = nil
                }
                await reconcileLocalLeases(control, claim: claim)
                onReady()
                let interval = heartbeatInterval(specs.values)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while true {
                            try await Task.sleep(for: interval * Double.random(in: 0.8...1.0))
                            // A heartbeat that gets no answer in time ends the session: the coordinator or the
                            // path to it is gone, so the agent reconnects (and finds out whether it was fenced).
                            let beat = try await control.within(max(interval, .seconds(2)), "heartbeat") {
                                try await control.heartbeat(host: self.configuration.host, epoch: join.epoch)
                            }
                            self.noteStore(StoreMark(id: join.store, generation: beat.generation))
                        }
                    }
                    group.addTask { [directory] in
                        var directory = directory
                        for await event in events {
                            guard directory.apply(event) else { continue }
                            try await self.updateMesh(directory)
                        }
                        throw NetleaseError(.unavailable, "the coordinator's event stream ended")
                    }
                    defer { group.cancelAll() }
                    try await group.next()
                }
            }
        }
    }

    /// Compares the coordinator's store with the one seen before. A lower generation of the same store means the
    /// coordinator was restored from an older backup; a different id means its store was replaced. Either way the
    /// agent does not trust it blindly: it reconciles every lease it uses (as after any reconnect) and reports it.
    private func noteStore(_ mark: StoreMark) {
        let path = (configuration.stateDirectory as NSString).appendingPathComponent("coordinator-store.json")
        let previous = state.withLock { $0.store }
            ?? files.contents(of: path).flatMap { try? JSONDecoder().decode(StoreMark.self, from: $0) }
        var warning: String?
        if let previous, !mark.id.isEmpty {
            if previous.id != mark.id {
                warning = "the coordinator's store changed from \(previous.id) to \(mark.id): its data was replaced; "
                    + "this host's leases were reconciled against it"
            } else if mark.generation < previous.generation {
                warning = "the coordinator's store went back from generation \(previous.generation) to "
                    + "\(mark.generation): it was restored from an older backup; this host's leases were reconciled"
            }
        }
        if let warning { logger.error("coordinator store changed under this agent", metadata: ["detail": "\(warning)"]) }
        state.withLock {
            $0.store = mark
            if warning != nil { $0.storeWarning = warning }
        }
        if previous != mark, let data = try? JSONEncoder().encode(mark) {
            try? files.writeAtomically(data, to: path, mode: 0o600)
        }
    }

    func heartbeatInterval(_ specs: some Sequence<NetworkSpec>) -> Duration {
        if let fixed = configuration.heartbeatInterval { return fixed }
        let ttl = specs.map(\.leaseTTL).min() ?? NetworkSpec.defaultLeaseTTL
        return .milliseconds(min(max(ttl * 1000 / 3, 1000), 30_000))
    }

    /// Builds (or repairs) one network on this host and verifies it. Throws when verification fails.
    private func configure(spec: NetworkSpec, bridgeAddress: IPv4Address, peers: [String: IPv4Address]) async throws
        -> NetworkContext
    {
        let config = HostNetworkConfig(
            spec: spec, bridgeAddress: bridgeAddress, underlay: configuration.underlay, peers: peers)
        let report = try await hostNetwork.ensureNetwork(config)
        for change in report.changes { logger.info("host network changed", metadata: ["network": "\(spec.name)", "change": "\(change)"]) }
        let failures = try await hostNetwork.verify(config)
        guard failures.isEmpty else {
            throw NetleaseError(
                .unavailable, "network '\(spec.name)' failed verification: "
                    + failures.map(\.description).joined(separator: "; "))
        }
        logger.info("network ready", metadata: [
            "network": "\(spec.name)", "bridge": "\(config.bridge)", "address": "\(bridgeAddress)/\(spec.subnet.prefix)",
            "peers": "\(peers.count)", "mtu": "\(report.mtu)",
        ])
        return NetworkContext(spec: spec, bridgeAddress: bridgeAddress, config: config, mtu: report.mtu)
    }

    /// Brings every network's mesh to the peers the directory now lists.
    private func updateMesh(_ directory: PeerDirectory) async throws {
        guard let session = state.withLock({ $0.session }) else { return }
        var updated = session.networks
        for (name, context) in session.networks {
            let peers = directory.peers(of: name)
            guard peers != context.config.peers else { continue }
            updated[name] = try await configure(spec: context.spec, bridgeAddress: context.bridgeAddress, peers: peers)
            logger.info("mesh updated", metadata: ["network": "\(name)", "peers": "\(peers.keys.sorted())"])
        }
        state.withLock {
            $0.directory = directory
            if $0.session?.epoch == session.epoch { $0.session?.networks = updated }
        }
    }

    /// Tells the coordinator what this host actually uses; records and logs every disagreement, changes nothing.
    private func reconcileLocalLeases(_ control: NetleaseConnection, claim: HostClaim) async {
        var disagreements: [String] = []
        var adopted = 0
        for local in leases.all {
            guard configuration.networks.contains(local.network), let address = local.ipv4 else { continue }
            do {
                let outcome = try await control.reconcile(ReconcileRequest(
                    network: local.network, owner: local.owner, address: address, ifname: local.ifname, claim: claim))
                switch outcome {
                case .held:
                    continue
                case .adopted:
                    adopted += 1
                    logger.notice("coordinator re-recorded a lease this host still uses",
                                  metadata: ["network": "\(local.network)", "address": "\(address)", "owner": "\(local.owner)"])
                case .taken(let holder):
                    disagreements.append(
                        "\(local.network) \(address): used here by '\(local.owner)' but held by '\(holder.owner)' on host '\(dash(holder.host))' (\(holder.state.rawValue))")
                case .moved(let current):
                    disagreements.append(
                        "\(local.network) '\(local.owner)': uses \(address) here but the coordinator gave it \(current.address)")
                }
            } catch {
                disagreements.append("\(local.network) \(address): reconcile failed: \(error)")
            }
        }
        for text in disagreements { logger.error("lease disagreement with the coordinator", metadata: ["detail": "\(text)"]) }
        let forgotten = state.withLock { s -> Bool in
            s.disagreements = disagreements
            s.readopted = adopted
            defer { s.fenced = false }
            guard adopted > 0, !s.fenced else { return false }
            s.storeWarning = "the coordinator had no record of \(adopted) lease(s) this host held without interruption: "
                + "its store lost acknowledged changes (restored from an older backup?); they were recorded again"
            return true
        }
        if forgotten { logger.error("coordinator forgot leases of this host", metadata: ["count": "\(adopted)"]) }
    }

    private func teardown() async {
        for local in leases.all where local.netns != nil {
            try? await hostNetwork.detach(network: local.network, owner: local.owner)
        }
        for name in configuration.networks {
            do { try await hostNetwork.teardown(network: name) } catch {
                logger.error("teardown failed", metadata: ["network": "\(name)", "error": "\(error)"])
            }
        }
    }

    // MARK: operations for local consumers

    /// Result of ACQUIRE and ATTACH.
    public struct Handout: Sendable, Equatable {
        public var lease: Lease
        public var gateway: IPv4Address
        public var mtu: Int
        public var bridge: String
    }

    func currentSession(for network: String) throws -> (Session, NetworkContext) {
        guard let session = state.withLock({ $0.session }) else {
            throw NetleaseError(.unavailable, "the agent is not connected to a coordinator right now; retry shortly")
        }
        guard let context = session.networks[network] else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(network)'")
        }
        return (session, context)
    }

    /// Probe-then-lease: every address is ARP-probed on the bridge before it is handed out. An address that answers
    /// is reported (quarantined with the MAC seen) and another is leased. A repeated request for an owner this host
    /// already served returns the same address without probing (the container itself would answer).
    public func acquire(network: String, owner: String, ifname: String, netns: String? = nil) async throws -> Handout {
        let (session, context) = try currentSession(for: network)
        let request = AcquireRequest(network: network, owner: owner, claim: session.claim, ifname: ifname)
        let known = leases.lease(network: network, owner: owner)
        for attempt in 1...max(1, configuration.maxProbeAttempts) {
            let lease = try await session.connection.acquire(request)
            if let known, known.address == lease.address.description {
                return handout(lease, context)
            }
            if let mac = try await prober.probe(lease.address, on: context.config.bridge) {
                logger.warning("address answered an ARP probe; quarantining it and leasing another", metadata: [
                    "network": "\(network)", "address": "\(lease.address)", "mac": "\(mac)", "attempt": "\(attempt)",
                ])
                _ = try await session.connection.reportConflict(
                    network: network, address: lease.address, mac: mac, claim: session.claim)
                continue
            }
            try leases.put(LocalLease(network: network, owner: owner, address: lease.address, prefix: lease.prefix,
                                      ifname: ifname, netns: netns))
            return handout(lease, context)
        }
        throw NetleaseError(
            .conflict, "\(configuration.maxProbeAttempts) addresses in a row answered ARP probes on \(context.config.bridge); "
                + "something on the bridge uses addresses outside netlease (see 'netlease leases --state conflict')")
    }

    private func handout(_ lease: Lease, _ context: NetworkContext) -> Handout {
        Handout(lease: lease, gateway: context.bridgeAddress, mtu: context.mtu, bridge: context.config.bridge)
    }

    /// Releases an owner's lease (idempotent).
    public func release(network: String, owner: String) async throws {
        let (session, _) = try currentSession(for: network)
        try await session.connection.release(ReleaseRequest(network: network, owner: owner, claim: session.claim))
        try leases.remove(network: network, owner: owner)
    }

    /// Leases (probe included) and plumbs the container in one step; idempotent for the same owner.
    public func attach(network: String, owner: String, netns: String, ifname: String) async throws -> Handout {
        let (_, context) = try currentSession(for: network)
        let namespace: NetworkNamespace = netns.contains("/") ? .path(netns) : .named(netns)
        let handout = try await acquire(network: network, owner: owner, ifname: ifname, netns: netns)
        do {
            let attached = try await hostNetwork.attach(ContainerAttachment(
                network: network, owner: owner, namespace: namespace, ifname: ifname, address: handout.lease.address,
                prefix: handout.lease.prefix, gateway: context.bridgeAddress, bridge: context.config.bridge,
                mtu: context.mtu))
            logger.info("container attached", metadata: [
                "network": "\(network)", "owner": "\(owner)", "address": "\(handout.lease.address)",
                "veth": "\(attached.hostInterface)", "netns": "\(netns)",
            ])
            return Handout(lease: handout.lease, gateway: handout.gateway, mtu: attached.mtu, bridge: handout.bridge)
        } catch {
            logger.error("plumbing failed; releasing the lease", metadata: ["owner": "\(owner)", "error": "\(error)"])
            try? await hostNetwork.detach(network: network, owner: owner)
            try? await release(network: network, owner: owner)
            throw NetleaseError(.internalError, "cannot plumb the container: \(error)")
        }
    }

    /// Removes the container's interface and releases its lease (idempotent). The interface goes even while the
    /// coordinator is unreachable; the release then fails with `unavailable` and a repeated detach finishes it.
    public func detach(network: String, owner: String) async throws {
        guard configuration.networks.contains(network) else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(network)'")
        }
        try await hostNetwork.detach(network: network, owner: owner)
        try await release(network: network, owner: owner)
        logger.info("container detached", metadata: ["network": "\(network)", "owner": "\(owner)"])
    }

    /// This host's leases as the coordinator has them.
    public func hostLeases(network: String?) async throws -> [Lease] {
        guard let session = state.withLock({ $0.session }) else {
            throw NetleaseError(.unavailable, "the agent is not connected to a coordinator right now; retry shortly")
        }
        return try await session.connection.leases(.init(network: network, host: configuration.host))
    }

    // MARK: doctor

    /// The operators' checklist, automated: coordinator session, bridge and mesh per network (against the live peer
    /// list), leases agreeing with the coordinator's view, disagreements found at reconcile.
    public func doctor() async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let (session, directory, disagreements, lastError, store, storeWarning, readopted) = state.withLock {
            ($0.session, $0.directory, $0.disagreements, $0.lastError, $0.store, $0.storeWarning, $0.readopted)
        }
        guard let session else {
            checks.append(DoctorCheck(name: "coordinator", ok: false, detail: "not connected: \(lastError ?? "connecting")"))
            return checks
        }
        checks.append(DoctorCheck(name: "coordinator", ok: true, detail: "connected, epoch \(session.epoch)"))
        checks.append(DoctorCheck(
            name: "store", ok: storeWarning == nil,
            detail: storeWarning ?? "store \(store?.id ?? "?") at generation \(store?.generation ?? 0) when joined"))
        for name in configuration.networks {
            guard let context = session.networks[name] else { continue }
            var config = context.config
            if let directory { config.peers = directory.peers(of: name) }
            do {
                let failures = try await hostNetwork.verify(config)
                if failures.isEmpty {
                    checks.append(DoctorCheck(
                        name: "\(name)/host-network", ok: true,
                        detail: "bridge \(config.bridge) up with \(context.bridgeAddress)/\(context.spec.subnet.prefix), mtu \(context.mtu); \(context.spec.tunnel.rawValue) mesh matches \(config.peers.count) peer(s)"))
                }
                for failure in failures {
                    checks.append(DoctorCheck(name: "\(name)/\(failure.check.rawValue)", ok: false, detail: failure.detail))
                }
            } catch {
                checks.append(DoctorCheck(name: "\(name)/host-network", ok: false, detail: "cannot inspect: \(error)"))
            }
            // Each up peer's bridge address must answer a ping across the tunnel.
            do {
                let up = Set(config.peers.keys)
                let bridges = try await session.connection.leases(.init(network: name, state: .active))
                    .filter { $0.isBridge && up.contains($0.host) }
                var silent: [String] = []
                for bridge in bridges.sorted(by: { $0.host < $1.host })
                where !(await hostNetwork.reachable(bridge.address)) {
                    silent.append("\(bridge.host) (\(bridge.address))")
                }
                checks.append(DoctorCheck(
                    name: "\(name)/peer-bridges", ok: silent.isEmpty,
                    detail: silent.isEmpty ? "\(bridges.count) peer bridge address(es) answer ping"
                        : "no answer from " + silent.joined(separator: ", ")))
            } catch {
                checks.append(DoctorCheck(name: "\(name)/peer-bridges", ok: false, detail: "cannot list peers: \(error)"))
            }
        }
        do {
            let remote = try await session.connection.leases(.init(host: configuration.host, state: .active))
            var mismatches: [String] = []
            for local in leases.all where configuration.networks.contains(local.network) {
                let match = remote.first { $0.network == local.network && $0.owner == local.owner }
                if match?.address.description != local.address {
                    mismatches.append("\(local.network) '\(local.owner)' uses \(local.address) here, coordinator: \(match.map { "\($0.address)" } ?? "no lease")")
                }
            }
            checks.append(DoctorCheck(
                name: "leases", ok: mismatches.isEmpty,
                detail: mismatches.isEmpty ? "\(leases.all.count) local lease(s) agree with the coordinator"
                    : mismatches.joined(separator: "; ")))
        } catch {
            checks.append(DoctorCheck(name: "leases", ok: false, detail: "cannot list leases: \(error)"))
        }
        checks.append(DoctorCheck(
            name: "reconcile", ok: disagreements.isEmpty,
            detail: disagreements.isEmpty
                ? "no disagreement at the last reconnect"
                    + (readopted > 0 ? "; \(readopted) lease(s) the coordinator had lost were recorded again" : "")
                : disagreements.joined(separator: "; ")))
        return checks
    }

    // MARK: local API

    private func serveLocalAPI() async throws {
        let server = LineServer(
            configuration: .init(address: .unix(path: configuration.socketPath), maxConnections: 256,
                                 idleTimeout: .seconds(120)),
            logger: logger)
        let path = configuration.socketPath
        let group = configuration.socketGroup
        try await server.run(onListening: { _ in
            do {
                try self.files.setMode(0o660, of: path)
                if let group { try self.files.setGroup(group, of: path) }
            } catch {
                self.logger.warning("cannot open the local API socket to its group", metadata: ["error": "\(error)"])
            }
            self.logger.info("local API ready", metadata: ["socket": "\(path)"])
            self.readyHandler(path)
        }, handler: { connection in
            try await LocalAPIHandler(agent: self).serve(connection)
        })
    }
}

func dash(_ text: String) -> String { text.isEmpty ? "-" : text }
