import Logging
import NetleaseCore
import NetleaseStore
import NetleaseTransport
import NetleaseWire

/// Turns one request line into one reply: the one place that decides what each verb does. Knows the protocol rules
/// (auth, which verbs need it, which are pipelined); the store knows the lease rules.
///
/// Every request enters through `start`, which parses it, checks the session's access once, and sorts it into one
/// of three kinds:
/// - immediate (PING, QUIT, AUTH): answered at once, nothing else involved;
/// - pipelined (ACQUIRE, RELEASE, HEARTBEAT): handed to the store without suspension, answered through `done`;
/// - barrier (every other verb): returned as a `Barrier` for `respond(to:session:)`, which the connection runs in a
///   task with nothing else of that connection in between.
///
/// Session in Session.swift; AUTH, access rules and host credentials in Authorization.swift; STATS and BACKUP in
/// their own files.
public struct RequestHandler: Sendable {
    let store: any LeaseStore
    let secret: ClusterSecret?
    let readerSecret: ClusterSecret?
    let counters: ServerCounters
    let events: EventHub
    let maxAuthFailures: Int
    let started: ContinuousClock.Instant
    let metrics: CoordinatorMetrics
    let logger: Logger
    /// With TLS: the certificate names (CN or DNS subjectAltName) that may authenticate as admin.
    let tlsAdminSubjects: Set<String>
    /// Connections authenticated with host credentials, closed when theirs is revoked.
    let hostSessions = HostSessions()

    public init(
        store: any LeaseStore,
        secret: ClusterSecret?,
        readerSecret: ClusterSecret? = nil,
        counters: ServerCounters = ServerCounters(),
        events: EventHub = EventHub(),
        maxAuthFailures: Int = CoordinatorConfiguration.defaults.maxAuthFailures,
        metrics: CoordinatorMetrics = CoordinatorMetrics(),
        tlsAdminSubjects: Set<String> = [],
        logger: Logger = Logger(label: "netlease.coordinator")
    ) {
        self.store = store
        self.secret = secret
        self.readerSecret = readerSecret
        self.counters = counters
        self.events = events
        self.maxAuthFailures = maxAuthFailures
        self.started = .now
        self.metrics = metrics
        self.tlsAdminSubjects = tlsAdminSubjects
        self.logger = logger
    }

    /// What `start` did with a request.
    public enum Started {
        /// Answered at once.
        case reply(Reply)
        /// Handed to the store; `done` gets the reply once the change is durable.
        case pending
        /// A barrier verb: run `respond(to:session:)` with nothing else of this connection in between.
        case barrier(Barrier)
    }

    /// A request of a barrier verb (docs/PROTOCOL.md): listings, joins, admin changes, RECONCILE, WATCH, AUTH with
    /// a host credential, and ACQUIRE with `from`. Each may suspend, so it runs after every request before it was
    /// applied and before any after it is read, and sees exactly the state its position in the stream implies. Only
    /// `start` makes one, after the access check.
    public struct Barrier: Sendable {
        let request: Request

        fileprivate init(_ request: Request) {
            self.request = request
        }
    }

    /// What the store did with a request `start` handed to it; `reply(to:)` makes the reply line. Kept apart so
    /// that the store's single writer thread only hands results over and the connections' threads render them.
    public enum Outcome: Sendable {
        case acquired(Result<Lease, Error>)
        case released(Result<Lease?, Error>)
        case heartbeat(Result<HostRecord, Error>)
    }

    /// The connection's hot path, without suspension: parses `text`, checks access, and either answers at once,
    /// hands the request to the store (acquire, release, heartbeat), which applies it now — in the order `start` is
    /// called — and calls `done` after the commit that holds it, or returns it as a barrier. `done` runs on the
    /// store's thread or, for a store with nothing pending, on the caller's thread before `start` returns; it must
    /// not block.
    public func start(
        _ text: Substring,
        session: inout Session,
        done: @escaping @Sendable (Outcome) -> Void
    )
        -> Started
    {
        counters.requests.add(1, ordering: .relaxed)
        let begun = ContinuousClock.now
        let metrics = self.metrics
        let request: Request
        do {
            request = try Request(line: text)
        } catch {
            metrics.requestEnded(Self.verb(in: text), error: error, since: begun)
            return .reply(failed(error))
        }
        do {
            try checkAccess(request, session: session)
        } catch {
            metrics.requestEnded(request.verb, error: error, since: begun)
            return .reply(failed(error))
        }
        switch request {
        case .ping:
            metrics.requestEnded(.ping, error: nil, since: begun)
            return .reply(.ok(["pong": "1"]))
        case .quit:
            session.closeRequested = true
            metrics.requestEnded(.quit, error: nil, since: begun)
            return .reply(.ok(["bye": "1"]))
        case .auth(let candidate):
            // A host credential is checked against its stored hash: a barrier, like every verb that reads the store.
            if HostCredential(candidate) != nil { return .barrier(Barrier(request)) }
            do {
                let reply = try authenticate(candidate, session: &session)
                metrics.requestEnded(.auth, error: nil, since: begun)
                return .reply(reply)
            } catch {
                metrics.requestEnded(.auth, error: error, since: begun)
                return .reply(failed(error))
            }
        case .acquire(let r) where r.from == nil:
            let operation = StoreOperation.acquire(
                network: r.network,
                owner: r.owner,
                claim: r.claim,
                address: r.address,
                ifname: r.ifname
            ) {
                metrics.requestEnded(.acquire, error: $0.failure, since: begun)
                done(.acquired($0))
            }
            store.submit(operation)
            return .pending
        case .release(let r):
            store.submit(
                .release(network: r.network, owner: r.owner, address: r.address, claim: r.claim) {
                    metrics.requestEnded(.release, error: $0.failure, since: begun)
                    done(.released($0))
                }
            )
            return .pending
        case .heartbeat(let host, let epoch):
            store.submit(
                .heartbeat(host: host, epoch: epoch) {
                    metrics.requestEnded(.heartbeat, error: $0.failure, since: begun)
                    done(.heartbeat($0))
                }
            )
            return .pending
        default:
            // Every other verb, and ACQUIRE with `from`.
            return .barrier(Barrier(request))
        }
    }

    /// The reply line for what the store did.
    public func reply(to outcome: Outcome) -> Reply {
        switch outcome {
        case .acquired(let result): reply(result) { .ok(WireCodec.fields(lease: $0)) }
        case .released(let result): reply(result, Self.released)
        case .heartbeat(let result): reply(result) { Self.heartbeatReply($0, store: store) }
        }
    }

    /// The reply to a barrier `start` handed back (counted and access-checked there already). WATCH sets
    /// `session.watch`.
    public func respond(to barrier: Barrier, session: inout Session) async -> Reply {
        let begun = ContinuousClock.now
        do {
            let reply = try await perform(barrier, session: &session)
            metrics.requestEnded(barrier.request.verb, error: nil, since: begun)
            return reply
        } catch {
            metrics.requestEnded(barrier.request.verb, error: error, since: begun)
            return failed(error)
        }
    }

    /// The error reply for `error`, counted; anything that is not a `NetleaseError` is logged and hidden.
    func failed(_ error: Error) -> Reply {
        counters.errors.add(1, ordering: .relaxed)
        if let error = error as? NetleaseError { return .error(error) }
        logger.error("request failed unexpectedly", metadata: ["error": "\(error)"])
        return .error(NetleaseError(.internalError, "internal error; see the coordinator log"))
    }

    func reply<T>(_ result: Result<T, Error>, _ success: (T) -> Reply) -> Reply {
        switch result {
        case .success(let value): success(value)
        case .failure(let error): failed(error)
        }
    }

    static func released(_ lease: Lease?) -> Reply {
        guard let lease else { return .ok(["released": "0"]) }
        var fields = WireCodec.fields(lease: lease)
        fields["released"] = "1"
        return .ok(fields)
    }

    static func heartbeatReply(_ record: HostRecord, store: any LeaseStore) -> Reply {
        .ok(["epoch": String(record.epoch), "generation": String(store.identity().generation)])
    }

    private func perform(_ barrier: Barrier, session: inout Session) async throws -> Reply {
        switch barrier.request {
        case .ping, .quit, .release, .heartbeat:
            // `start` answers these or hands them to the store; it never makes them barriers.
            throw NetleaseError(.internalError, "\(barrier.request.verb.rawValue) is not a barrier verb")
        case .networkCreate(let spec):
            let created = try await store.createNetwork(spec)
            logger.info("network created", metadata: ["network": "\(created.name)", "subnet": "\(created.subnet)"])
            events.publish(.network(created))
            return .ok(WireCodec.fields(network: created))
        case .networkList:
            let summaries = try await store.networks()
            return .list(
                header: Fields(),
                tag: WireCodec.networkTag,
                records: summaries.map { WireCodec.fields(network: $0.spec, counts: $0.counts) }
            )
        case .networkShow(let name):
            let summary = try await store.network(name)
            return .ok(WireCodec.fields(network: summary.spec, counts: summary.counts))
        case .networkDelete(let name):
            try await store.deleteNetwork(name)
            logger.info("network deleted", metadata: ["network": "\(name)"])
            events.publish(.networkDeleted(name))
            return .ok(["deleted": name])
        case .join(let host, let underlay, let networks, let lastEpoch):
            let join = { [store] in
                try await store.join(host: host, underlay: underlay, networks: networks, lastEpoch: lastEpoch)
            }
            let result: Ledger.JoinResult
            if session.host != nil {
                // Authorization lets a host credential join only as its own host. Counted while it runs, so that a
                // removal of the host waits for it (HostSessions).
                guard let joined = try await hostSessions.joining(host, revocations: session.hostRevocations, join)
                else {
                    session.closeRequested = true
                    throw NetleaseError(.authFailed, "the credential of host '\(host)' was revoked")
                }
                result = joined
            } else {
                result = try await join()
            }
            logger.info("host joined", metadata: ["host": "\(host)", "epoch": "\(result.host.epoch)"])
            events.publish(.host(result.host))
            let identity = store.identity()
            return .list(
                header: [
                    "host": host, "epoch": String(result.host.epoch), "store": identity.id,
                    "generation": String(identity.generation),
                ],
                tag: WireCodec.leaseTag,
                records: result.bridges.map(WireCodec.fields(lease:))
            )
        case .hostList:
            return .list(
                header: Fields(),
                tag: WireCodec.hostTag,
                records: try await store.hosts().map(WireCodec.fields(host:))
            )
        case .hostRemove(let host):
            return try await removeHost(host)
        case .reserve(let network, let address, let note):
            return .ok(WireCodec.fields(lease: try await store.reserve(network: network, address: address, note: note)))
        case .unreserve(let network, let address):
            try await store.unreserve(network: network, address: address)
            return .ok(["address": address.description])
        case .reportConflict(let network, let address, let mac, let claim):
            let lease = try await store.reportConflict(network: network, address: address, mac: mac, claim: claim)
            metrics.conflictReported()
            logger.warning(
                "address quarantined after an ARP answer",
                metadata: [
                    "network": "\(network)", "address": "\(address)", "mac": "\(mac)",
                    "host": "\(claim.host)",
                ]
            )
            return .ok(WireCodec.fields(lease: lease))
        case .leaseList(let filter):
            return .list(
                header: Fields(),
                tag: WireCodec.leaseTag,
                records: try await store.leases(filter).filter { Self.mayList($0, session: session) }
                    .map(WireCodec.fields(lease:))
            )
        case .acquire(let r):
            // ACQUIRE with `from`: rare (one per container started from an agent's pool) and not an allocation.
            guard let from = r.from, let address = r.address, let claim = r.claim else {
                throw NetleaseError.badRequest("ACQUIRE with field 'from' needs fields 'address', 'host' and 'epoch'")
            }
            let lease = try await store.handOver(
                network: r.network,
                address: address,
                from: from,
                owner: r.owner,
                ifname: r.ifname,
                claim: claim
            )
            return .ok(WireCodec.fields(lease: lease))
        case .reconcile(let r):
            let outcome = try await store.reconcile(
                network: r.network,
                owner: r.owner,
                address: r.address,
                ifname: r.ifname,
                claim: r.claim
            )
            switch outcome {
            case .held, .moved:
                break
            case .adopted:
                logger.notice(
                    "re-recorded a lease an agent still uses",
                    metadata: ["network": "\(r.network)", "address": "\(r.address)", "owner": "\(r.owner)"]
                )
            case .taken(let holder):
                logger.warning(
                    "an agent uses an address held by someone else",
                    metadata: [
                        "network": "\(r.network)", "address": "\(r.address)", "claimant": "\(r.owner)",
                        "host": "\(r.claim.host)", "holder": "\(holder.owner)",
                    ]
                )
            }
            switch outcome {
            case .taken(let holder):
                return .ok(WireCodec.fields(reconcile: .taken(by: Self.visible(holder, to: session))))
            case .moved(let lease):
                return .ok(WireCodec.fields(reconcile: .moved(to: Self.visible(lease, to: session))))
            case .held, .adopted: return .ok(WireCodec.fields(reconcile: outcome))
            }
        case .watch:
            // A standby has no events to carry; refused before subscribing.
            if let leadership = store.leadershipStatus(), !leadership.serving { throw leadership.refusal }
            let subscription = events.subscribe()
            session.watch = subscription
            return .list(
                header: Fields(),
                tag: WireCodec.hostTag,
                records: try await store.hosts().map(WireCodec.fields(host:))
            )
        case .backup:
            return try await backup()
        case .stats:
            return .ok(try await statistics())
        case .auth(let candidate):
            guard let credential = HostCredential(candidate) else {
                return try authenticate(candidate, session: &session)
            }
            return try await authenticate(credential, session: &session)
        case .hostCredentialSet(let host, let hash):
            return try await setHostCredential(host: host, hash: hash)
        case .hostCredentialRevoke(let host):
            return try await revokeHostCredential(host: host)
        case .hostCredentialList:
            return try await listHostCredentials()
        }
    }
}
