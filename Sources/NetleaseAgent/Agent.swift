import HostNetwork
import Logging
import NetleaseCore
import NetleaseTransport
import ServiceLifecycle
import Synchronization

/// One host's agent.
///
/// Start: connect and authenticate (coordinators tried round robin, exponential backoff with jitter) → join (epoch,
/// bridge addresses) → read the network definitions → watch the host list on a second connection → build bridge and
/// tunnel mesh for every network and verify it → reconcile the leases this host recorded → only then open the local
/// API. Afterwards: heartbeats (jittered), mesh updates on host events. A lost connection or a `stale-epoch` starts
/// the cycle again; the local API stays open and answers `unavailable` while disconnected. Stop leaves the host
/// network and containers working unless `teardownOnStop`.
///
/// This file holds the lifecycle; the parts live beside it: `CoordinatorSession` (one connection's life),
/// `MeshFollower` (bridge and mesh per network), `LeaseReconciliation` and `RequestRecovery` (after each join),
/// `LocalOperations` (what local consumers ask for), `Doctor`, `LocalAPIServer`, and the state files
/// (`LocalLeaseFile`, `StoreMark`, `InterfaceKeyFile`).
public final class Agent: Service, Sendable {
    public let configuration: AgentConfiguration
    let hostNetwork: any HostNetworking
    let prober: any ARPProber
    let logger: Logger
    /// This agent's metrics; `metricsServer` serves them.
    public let metrics: AgentMetrics
    let files = LocalFileSystem()
    let leases: LocalLeaseFile
    let storeMarkFile: StoreMarkFile
    /// This host's key for container link names and MACs.
    let naming: ContainerNaming
    /// One request at a time per (network, owner).
    let ownerLocks = OwnerLocks()
    /// One change of the networks' host side at a time (`withMeshLock`).
    let meshLock = OwnerLocks()
    let state = Mutex(Runtime())
    /// systemd's notify socket, when started as a `Type=notify` service: READY=1 and status lines.
    let notifier: SystemdNotifier?
    private let readyHandler: @Sendable (String) -> Void

    /// What the parts share: the live session, the peers last heard of, and what the last reconnect found.
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
        /// The local API socket listens (readiness).
        var localAPIOpen = false
        /// What the last recovery could not repair: interrupted requests it could not undo, containers it could
        /// not re-plumb.
        var unrepaired: [String] = []
        /// Pooled addresses being handed out right now (keys of their records).
        var claimedPool: Set<String> = []
        /// Why the last attempt to fill a network's pool failed; nil once one succeeds.
        var poolErrors: [String: String] = [:]
        /// Wakes the pool keeper of the current session.
        var poolWake: AsyncStream<Void>.Continuation?
        /// Fills in flight, requests waiting for them, and which pools were filled the first time.
        var pool = PoolState()
        /// Foreign MACs seen claiming an address this host holds ("network address mac" → holders), once each.
        var foreignClaims: [String: String] = [:]
        /// Why watching a network's bridge failed last; nil while the watch runs.
        var watchErrors: [String: String] = [:]
        /// Where and as whom the last session served: the pool is given back there when the agent stops.
        var lastSession: (endpoint: Endpoint, claim: HostClaim)?
        /// Networks a resync could not repair, with what is still wrong (readiness).
        var resyncFailures: [String: String] = [:]
    }

    /// - Parameters:
    ///   - metrics: where this agent counts (every ARP probe of `prober` included).
    ///   - notifier: gets `READY=1` when `onReady` is called, and a status line at each step of a session.
    ///   - onReady: called with the socket path once the local API listens (after the first full setup) and each
    ///     network's address pool was filled the first time (or could not be: see `maintainPools`).
    public init(
        configuration: AgentConfiguration,
        hostNetwork: any HostNetworking,
        prober: any ARPProber,
        metrics: AgentMetrics = AgentMetrics(),
        logger: Logger = Logger(label: "netlease.agent"),
        notifier: SystemdNotifier? = nil,
        onReady: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        guard !configuration.coordinators.isEmpty else { throw NetleaseError.badRequest("no coordinator address") }
        guard !configuration.networks.isEmpty else { throw NetleaseError.badRequest("no network to serve") }
        guard Names.isValid(configuration.host) else {
            throw NetleaseError.badRequest("host name '\(configuration.host)' must be letters, digits, '-', '_' or '.'")
        }
        self.configuration = configuration
        self.hostNetwork = hostNetwork
        self.prober = CountingARPProber(base: prober, metrics: metrics)
        self.metrics = metrics
        self.logger = logger
        self.notifier = notifier
        self.readyHandler = onReady
        leases = try LocalLeaseFile(directory: configuration.stateDirectory, files: files)
        storeMarkFile = StoreMarkFile(directory: configuration.stateDirectory, files: files)
        naming = try InterfaceKeyFile(directory: configuration.stateDirectory, files: files).loadOrCreate()
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await self.runSessions() }
        // Graceful shutdown cancelled the sessions, not this task: the pool goes back on a connection of its own.
        await returnPools()
        if configuration.teardownOnStop { await teardown() }
        logger.info("agent stopped", metadata: ["teardown": "\(configuration.teardownOnStop)"])
    }

    /// Connects, serves, reconnects — until cancelled. The local API starts after the first full setup.
    private func runSessions() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            if let path = configuration.dockerPluginSocket {
                // Open at once: until the networks are ready Docker gets a clear refusal, not a missing plugin.
                group.addTask { try await self.serveDockerPlugin(at: path) }
            }
            group.addTask { try await self.resyncNetworks() }
            var apiStarted = false
            var rotation = CoordinatorRotation(
                coordinators: configuration.coordinators,
                delay: configuration.reconnectDelay
            )
            while !Task.isCancelled {
                let endpoint = rotation.current
                notifier?.status("connecting to coordinator \(endpoint)")
                var ended: (any Error)?
                do {
                    try await session(with: endpoint) { leaseTTL in
                        rotation.connected(servingLeaseTTL: leaseTTL)
                        if !apiStarted {
                            apiStarted = true
                            group.addTask { try await self.serveLocalAPI() }
                        } else {
                            notifier?.status(servingStatus)
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    sessionEnded(with: error, at: endpoint)
                    ended = error
                }
                state.withLock { $0.session = nil }
                try await Task.sleep(for: rotation.next(after: ended))
            }
        }
    }

    private func serveLocalAPI() async throws {
        let server = LocalAPIServer(
            socketPath: configuration.socketPath,
            socketGroup: configuration.socketGroup,
            files: files,
            logger: logger
        )
        defer { state.withLock { $0.localAPIOpen = false } }
        try await server.run(handler: LocalAPIHandler(agent: self)) { [self] _ in
            state.withLock { $0.localAPIOpen = true }
            announceReadyIfDue()
        }
    }

    /// Announces readiness (systemd's READY=1, `onReady`) once, when every network is verified, the local API is
    /// open and each network's pool was filled the first time — so the first attaches after a start come from the
    /// pool instead of waiting for a full probe. The API serves from the moment it opens; readiness is what
    /// supervisors and scripts wait for.
    func announceReadyIfDue() {
        let due = state.withLock { runtime -> Bool in
            guard runtime.localAPIOpen, !runtime.pool.announced,
                runtime.pool.primed.isSuperset(of: configuration.networks)
            else { return false }
            runtime.pool.announced = true
            return true
        }
        guard due else { return }
        notifier?.ready(status: servingStatus)
        readyHandler(configuration.socketPath)
    }

    /// What `systemctl status` shows while the agent serves.
    private var servingStatus: String {
        "serving \(configuration.networks.joined(separator: ", ")) on \(configuration.socketPath)"
    }

    /// Removes what the agent built: the containers it plumbed itself, then each network's tunnels and bridge.
    private func teardown() async {
        for local in leases.all {
            guard let link = containerLink(of: local) else { continue }
            do { try await hostNetwork.detach(link) } catch {
                logger.error("container not detached", metadata: ["owner": "\(local.owner)", "error": "\(error)"])
            }
        }
        for name in configuration.networks {
            do { try await hostNetwork.teardown(network: name) } catch {
                logger.error("teardown failed", metadata: ["network": "\(name)", "error": "\(error)"])
            }
        }
    }
}
