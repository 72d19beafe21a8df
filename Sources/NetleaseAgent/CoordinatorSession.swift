import Logging
import NetleaseClient
import NetleaseCore
import NetleaseTransport
import NetleaseWire

extension Agent {
    /// The live session with the coordinator, present only while connected and the host network is verified.
    struct Session: Sendable {
        var connection: NetleaseConnection
        var epoch: Int64
        var networks: [String: NetworkContext]
        var claim: HostClaim
    }

    /// One connection's life: join, build, verify, reconcile, then heartbeat and follow events until something fails.
    /// `onReady` runs once the session serves (networks verified, leases reconciled), with the shortest lease TTL of
    /// the served networks. A standby's `not-leader` ends the session like any error; the rotation follows its hint.
    func session(with endpoint: Endpoint, onReady: (Duration) -> Void) async throws {
        let secret = configuration.secret
        let tls = configuration.tls
        try await NetleaseConnection.connect(to: endpoint, secret: secret, tls: tls) { control in
            let lastEpoch = (state.withLock { $0.store } ?? storeMarkFile.load())?.epoch
            let join = try await control.join(
                host: configuration.host,
                underlay: configuration.underlay,
                networks: configuration.networks,
                lastEpoch: lastEpoch
            )
            let claim = HostClaim(host: configuration.host, epoch: join.epoch)
            logger.info("joined the cluster", metadata: ["coordinator": "\(endpoint)", "epoch": "\(join.epoch)"])
            notifier?.status("joined \(endpoint) as epoch \(join.epoch); building and verifying the networks")
            noteStore(StoreMark(id: join.store, generation: join.generation, epoch: join.epoch))
            var specs: [String: NetworkSpec] = [:]
            for name in configuration.networks { specs[name] = try await control.network(name).spec }
            // Host events come on a second connection: after WATCH the coordinator reads nothing more from it.
            try await NetleaseConnection.connect(to: endpoint, secret: secret, tls: tls) { watcher in
                let (hosts, events) = try await watcher.watch()
                let directory = PeerDirectory(me: configuration.host, hosts: hosts)
                let networks = try await buildNetworks(bridges: join.bridges, specs: specs, directory: directory)
                state.withLock {
                    $0.session = Session(connection: control, epoch: join.epoch, networks: networks, claim: claim)
                    $0.directory = directory
                    $0.lastError = nil
                }
                await reconcileLocalLeases(control, claim: claim)
                await recoverInterruptedRequests(control, claim: claim)
                onReady(.seconds(specs.values.map(\.leaseTTL).min() ?? NetworkSpec.defaultLeaseTTL))
                state.withLock { $0.lastSession = (endpoint, claim) }
                let interval = heartbeatInterval(specs.values)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await self.heartbeat(control, epoch: join.epoch, store: join.store, every: interval)
                    }
                    group.addTask { try await self.follow(events, from: directory) }
                    // The pool keeper and the bridge watches never end the session: they park when done.
                    group.addTask {
                        await self.maintainPools()
                        try await Self.parkUntilCancelled()
                    }
                    for network in configuration.networks {
                        group.addTask {
                            await self.defend(network)
                            try await Self.parkUntilCancelled()
                        }
                    }
                    defer { group.cancelAll() }
                    try await group.next()
                }
            }
        }
    }

    /// Waits until the task is cancelled (then throws): for a child task whose work is done but whose group must
    /// not take its end for the session's.
    static func parkUntilCancelled() async throws {
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    /// Records why a session ended; a `stale-epoch` means the coordinator declared this host lost or another agent
    /// joined as it, so leases re-adopted at the next reconnect are expected.
    func sessionEnded(with error: any Error, at endpoint: Endpoint) {
        let text = (error as? NetleaseError)?.description ?? "\(error)"
        let fenced = (error as? NetleaseError)?.code == .staleEpoch
        state.withLock {
            $0.lastError = text
            if fenced { $0.fenced = true }
        }
        logger.warning(
            "coordinator session ended",
            metadata: ["coordinator": "\(endpoint)", "error": "\(text)"]
        )
        notifier?.status("no coordinator session (\(text)); retrying")
    }

    /// Heartbeats until one fails. A heartbeat that gets no answer in time ends the session: the coordinator or the
    /// path to it is gone, so the agent reconnects (and finds out whether it was fenced).
    private func heartbeat(
        _ control: NetleaseConnection,
        epoch: Int64,
        store: String,
        every interval: Duration
    )
        async throws
    {
        let timeout = max(interval, AgentConfiguration.minimumHeartbeatTimeout)
        while true {
            try await Task.sleep(for: interval * Double.random(in: 0.8...1.0))
            let beat = try await control.within(timeout, "heartbeat") {
                try await control.heartbeat(host: self.configuration.host, epoch: epoch)
            }
            noteStore(StoreMark(id: store, generation: beat.generation, epoch: beat.epoch))
        }
    }

    /// Applies host events to the peer directory and brings the mesh along. The stream ends only when the watching
    /// connection does, which ends the session.
    private func follow(_ events: AsyncStream<Event>, from directory: PeerDirectory) async throws {
        var directory = directory
        for await event in events {
            try applyNetworkEvent(event)
            guard directory.apply(event) else { continue }
            try await updateMesh(directory)
        }
        throw NetleaseError(.unavailable, "the coordinator's event stream ended")
    }

    /// The configured period, or a third of the shortest lease TTL of the served networks within
    /// `AgentConfiguration.derivedHeartbeatRange`.
    func heartbeatInterval(_ specs: some Sequence<NetworkSpec>) -> Duration {
        if let fixed = configuration.heartbeatInterval { return fixed }
        let ttl = specs.map(\.leaseTTL).min() ?? NetworkSpec.defaultLeaseTTL
        let range = AgentConfiguration.derivedHeartbeatRange
        return min(max(.seconds(ttl) / 3, range.lowerBound), range.upperBound)
    }

    /// Compares the coordinator's store with the one seen before. A lower generation of the same store means the
    /// coordinator was restored from an older backup; a different id means its store was replaced. Either way the
    /// agent does not trust it blindly: it reconciles every lease it uses (as after any reconnect) and reports it.
    func noteStore(_ mark: StoreMark) {
        let previous = state.withLock { $0.store } ?? storeMarkFile.load()
        let warning = previous.flatMap { mark.change(since: $0) }
        if let warning {
            logger.error("coordinator store changed under this agent", metadata: ["detail": "\(warning)"])
        }
        state.withLock {
            $0.store = mark
            if warning != nil { $0.storeWarning = warning }
        }
        if previous != mark {
            do { try storeMarkFile.save(mark) } catch {
                logger.warning("cannot record the coordinator's store", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Which coordinator to try next and how long to wait first.
///
/// - A standby's `not-leader leader=ADDR` sends the agent to ADDR at once (the next address when it names none or
///   names the one just asked), without a pause — a standby changes nothing, so asking the leader straight away is
///   safe. At most `maximumHops` such hops follow each other (two standbys naming each other during a takeover
///   must not spin); after that a `not-leader` counts as a failure.
/// - A coordinator that cannot be reached, or a session that fails, moves to the next address in the list after an
///   exponential backoff with jitter, back to the shortest pause after a session that got ready.
/// - The pause stays below a third of the shortest lease TTL the agent serves (known once a session got ready): a
///   host that waits longer than that between attempts could miss its heartbeats for a whole TTL while a
///   coordinator is there to answer — and lose its leases to the reclaimer.
struct CoordinatorRotation {
    let coordinators: [Endpoint]
    let delay: ClosedRange<Duration>
    private var index = 0
    /// The leader a standby named, when it is not the address at `index`.
    private var hinted: Endpoint?
    private var failures = 0
    private var hops = 0
    /// The shortest lease TTL of the networks served in the last session that got ready.
    private(set) var servedLeaseTTL: Duration?

    init(coordinators: [Endpoint], delay: ClosedRange<Duration>) {
        precondition(!coordinators.isEmpty, "the agent checks for coordinators at init")
        self.coordinators = coordinators
        self.delay = delay
    }

    /// Consecutive `not-leader` hops taken without a pause: every address once, plus two for a takeover in progress.
    var maximumHops: Int { coordinators.count + 2 }

    var current: Endpoint { hinted ?? coordinators[index % coordinators.count] }

    /// The session got ready, serving networks whose shortest lease TTL is `leaseTTL`: the next pause starts from
    /// the shortest again and stays below a third of that TTL.
    mutating func connected(servingLeaseTTL leaseTTL: Duration) {
        failures = 0
        hops = 0
        servedLeaseTTL = leaseTTL
    }

    /// The session with `current` ended (`error`, nil when it just stopped): returns the pause before trying the
    /// address that is `current` now.
    mutating func next(after error: (any Error)?) -> Duration {
        if let error = error as? NetleaseError, error.code == .notLeader, hops < maximumHops {
            hops += 1
            let hint = NetleaseConnection.leader(in: error.message)
            if let hint, hint != current {
                if let position = coordinators.firstIndex(of: hint) {
                    index = position
                    hinted = nil
                } else {
                    hinted = hint
                }
            } else {
                advance()
            }
            return .zero
        }
        hops = 0
        failures += 1
        advance()
        return Self.delay(after: failures, in: range)
    }

    /// The backoff range: the configured one, its top held below a third of the served lease TTL.
    var range: ClosedRange<Duration> {
        guard let ttl = servedLeaseTTL else { return delay }
        let ceiling = min(delay.upperBound, ttl / 3)
        return min(delay.lowerBound, ceiling)...ceiling
    }

    /// On to the next address of the list (after a hinted one: the one after the address that named it).
    private mutating func advance() {
        hinted = nil
        index = (index + 1) % coordinators.count
    }

    /// The pause after `failures` failures in a row: doubling from the bottom of `range`, capped at its top, with
    /// jitter that keeps it below the top (so strictly below a third of the TTL).
    static func delay(after failures: Int, in range: ClosedRange<Duration>) -> Duration {
        let exponent = min(max(failures - 1, 0), 16)
        let base = min(range.lowerBound * (1 << exponent), range.upperBound)
        return base * Double.random(in: 0.5..<1.0)
    }
}
