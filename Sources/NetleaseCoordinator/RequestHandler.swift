import Foundation
import Logging
import NetleaseCore
import NetleaseStore
import NetleaseWire
import Synchronization
import NetleaseTransport

/// What one connection knows about itself.
public struct Session: Sendable {
    public var authenticated: Bool
    /// Authenticated with the read-only secret: changes are refused.
    public var readOnly = false
    public var authFailures = 0
    public var closeRequested = false
    /// Set by WATCH: from now on the connection carries these events.
    public var watch: EventHub.Subscription?

    public init(authenticated: Bool) { self.authenticated = authenticated }
}

/// Request counters shared by all connections.
public final class ServerCounters: Sendable {
    let requests = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let connections: ConnectionCounters

    public init(connections: ConnectionCounters = ConnectionCounters()) { self.connections = connections }
}

/// Turns one request line into one reply. Knows the protocol rules (auth, which verbs need it); the store knows
/// the lease rules.
public struct RequestHandler: Sendable {
    let store: any LeaseStore
    let secret: ClusterSecret?
    let readerSecret: ClusterSecret?
    let counters: ServerCounters
    let events: EventHub
    let maxAuthFailures: Int
    let started: ContinuousClock.Instant
    let logger: Logger

    public init(store: any LeaseStore, secret: ClusterSecret?, readerSecret: ClusterSecret? = nil,
                counters: ServerCounters = ServerCounters(),
                events: EventHub = EventHub(), maxAuthFailures: Int = 3,
                logger: Logger = Logger(label: "netlease.coordinator")) {
        self.store = store
        self.secret = secret
        self.readerSecret = readerSecret
        self.counters = counters
        self.events = events
        self.maxAuthFailures = maxAuthFailures
        self.started = .now
        self.logger = logger
    }

    /// What `start` did with a request.
    public enum Started {
        /// Answered at once.
        case reply(Reply)
        /// Handed to the store; `done` gets the reply once the change is durable.
        case pending
        /// Needs `respond(to:session:)` (listings, joins, watches, admin verbs): run it with nothing else of this
        /// connection in between.
        case needsTask(Request)
    }

    /// What the store did with a request `start` handed to it; `reply(to:)` makes the reply line. Kept apart so
    /// that the store's single writer thread only hands results over and the connections' threads render them.
    public enum Outcome: Sendable {
        case acquired(Result<Lease, Error>)
        case released(Result<Lease?, Error>)
        case heartbeat(Result<HostRecord, Error>)
    }

    /// The connection's hot path, without suspension: parses `text` and either answers at once, or hands the
    /// request to the store (acquire, release, heartbeat), which applies it now — in the order `start` is called —
    /// and calls `done` after the commit that holds it. `done` runs on the store's thread or, for a store with
    /// nothing pending, on the caller's thread before `start` returns; it must not block.
    public func start(_ text: Substring, session: inout Session, done: @escaping @Sendable (Outcome) -> Void)
        -> Started
    {
        counters.requests.add(1, ordering: .relaxed)
        let request: Request
        do {
            request = try Request(line: text)
            try checkAccess(request, session: session)
        } catch {
            return .reply(failed(error))
        }
        switch request {
        case .ping, .quit, .auth:
            do {
                return .reply(try answer(request, session: &session))
            } catch {
                return .reply(failed(error))
            }
        case .acquire(let r):
            store.acquire(network: r.network, owner: r.owner, claim: r.claim, address: r.address, ifname: r.ifname) {
                done(.acquired($0))
            }
            return .pending
        case .release(let r):
            store.release(network: r.network, owner: r.owner, address: r.address, claim: r.claim) { done(.released($0)) }
            return .pending
        case .heartbeat(let host, let epoch):
            store.heartbeat(host: host, epoch: epoch) { done(.heartbeat($0)) }
            return .pending
        default:
            return .needsTask(request)
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

    /// The reply to a request `start` handed back as `needsTask` (counted there already).
    public func respond(toStarted request: Request, session: inout Session) async -> Reply {
        do {
            return try await respond(to: request, session: &session)
        } catch {
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

    func checkAccess(_ request: Request, session: Session) throws {
        if !session.authenticated && !request.allowedBeforeAuth {
            throw NetleaseError(.authRequired, "\(request.verb.rawValue) needs an authenticated connection; send AUTH first")
        }
        if session.readOnly && request.needsAdmin {
            throw NetleaseError(.forbidden, "\(request.verb.rawValue) needs admin credentials; these are read-only")
        }
    }

    func respond(to request: Request, session: inout Session) async throws -> Reply {
        try checkAccess(request, session: session)
        switch request {
        case .ping, .quit, .auth:
            return try answer(request, session: &session)
        case .acquire(let r):
            return .ok(WireCodec.fields(lease: try await store.acquire(
                network: r.network, owner: r.owner, claim: r.claim, address: r.address, ifname: r.ifname)))
        case .release(let r):
            return Self.released(try await store.release(network: r.network, owner: r.owner, address: r.address, claim: r.claim))
        case .heartbeat(let host, let epoch):
            return Self.heartbeatReply(try await store.heartbeat(host: host, epoch: epoch), store: store)
        case .networkCreate(let spec):
            let created = try await store.createNetwork(spec)
            logger.info("network created", metadata: ["network": "\(created.name)", "subnet": "\(created.subnet)"])
            events.publish(.network(created))
            return .ok(WireCodec.fields(network: created))
        case .networkList:
            let summaries = try await store.networks()
            return .list(header: Fields(), tag: WireCodec.networkTag,
                         records: summaries.map { WireCodec.fields(network: $0.spec, counts: $0.counts) })
        case .networkShow(let name):
            let summary = try await store.network(name)
            return .ok(WireCodec.fields(network: summary.spec, counts: summary.counts))
        case .networkDelete(let name):
            try await store.deleteNetwork(name)
            logger.info("network deleted", metadata: ["network": "\(name)"])
            events.publish(.networkDeleted(name))
            return .ok(["deleted": name])
        case .join(let host, let underlay, let networks):
            let result = try await store.join(host: host, underlay: underlay, networks: networks)
            logger.info("host joined", metadata: ["host": "\(host)", "epoch": "\(result.host.epoch)"])
            events.publish(.host(result.host))
            let identity = store.identity()
            return .list(header: ["host": host, "epoch": String(result.host.epoch), "store": identity.id,
                                  "generation": String(identity.generation)], tag: WireCodec.leaseTag,
                         records: result.bridges.map(WireCodec.fields(lease:)))
        case .hostList:
            return .list(header: Fields(), tag: WireCodec.hostTag, records: try await store.hosts().map(WireCodec.fields(host:)))
        case .hostRemove(let host):
            let released = try await store.removeHost(host)
            logger.info("host removed", metadata: ["host": "\(host)", "released": "\(released)"])
            events.publish(.hostRemoved(host))
            return .ok(["released": String(released)])
        case .reserve(let network, let address, let note):
            return .ok(WireCodec.fields(lease: try await store.reserve(network: network, address: address, note: note)))
        case .unreserve(let network, let address):
            try await store.unreserve(network: network, address: address)
            return .ok(["address": address.description])
        case .reportConflict(let network, let address, let mac, let claim):
            let lease = try await store.reportConflict(network: network, address: address, mac: mac, claim: claim)
            logger.warning("address quarantined after an ARP answer",
                           metadata: ["network": "\(network)", "address": "\(address)", "mac": "\(mac)", "host": "\(claim.host)"])
            return .ok(WireCodec.fields(lease: lease))
        case .leaseList(let filter):
            return .list(header: Fields(), tag: WireCodec.leaseTag,
                         records: try await store.leases(filter).map(WireCodec.fields(lease:)))
        case .reconcile(let r):
            let outcome = try await store.reconcile(
                network: r.network, owner: r.owner, address: r.address, ifname: r.ifname, claim: r.claim)
            switch outcome {
            case .held, .moved:
                break
            case .adopted:
                logger.notice("re-recorded a lease an agent still uses",
                              metadata: ["network": "\(r.network)", "address": "\(r.address)", "owner": "\(r.owner)"])
            case .taken(let holder):
                logger.warning("an agent uses an address held by someone else",
                               metadata: ["network": "\(r.network)", "address": "\(r.address)", "claimant": "\(r.owner)",
                                          "host": "\(r.claim.host)", "holder": "\(holder.owner)"])
            }
            return .ok(WireCodec.fields(reconcile: outcome))
        case .watch:
            let subscription = events.subscribe()
            session.watch = subscription
            return .list(header: Fields(), tag: WireCodec.hostTag, records: try await store.hosts().map(WireCodec.fields(host:)))
        case .backup:
            return try await backup()
        case .stats:
            return .ok(try await statistics())
        }
    }

    /// PING, QUIT, AUTH: no store involved.
    func answer(_ request: Request, session: inout Session) throws -> Reply {
        switch request {
        case .ping:
            return .ok(["pong": "1"])
        case .quit:
            session.closeRequested = true
            return .ok(["bye": "1"])
        case .auth(let candidate):
            guard let secret else {
                session.authenticated = true
                return .ok(["role": "admin"])
            }
            if !secret.matches(candidate), let readerSecret, readerSecret.matches(candidate) {
                session.authenticated = true
                session.readOnly = true
                return .ok(["role": "reader"])
            }
            guard secret.matches(candidate) else {
                session.authFailures += 1
                if session.authFailures >= maxAuthFailures { session.closeRequested = true }
                logger.warning("authentication failed", metadata: ["failures": "\(session.authFailures)"])
                throw NetleaseError(.authFailed, "wrong secret")
            }
            session.authenticated = true
            session.readOnly = false
            return .ok(["role": "admin"])
        default:
            preconditionFailure("answer(_:session:) handles PING, QUIT and AUTH only")
        }
    }

    /// A consistent copy of the store, sent as base64 `DATA` records.
    func backup() async throws -> Reply {
        let path = (NSTemporaryDirectory() as NSString)
            .appendingPathComponent("netlease-backup-\(UInt64.random(in: 0...UInt64.max)).db")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let identity = try await store.backup(to: path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NetleaseError(.storage, "cannot read the backup just written")
        }
        var records: [Fields] = []
        var offset = 0
        while offset < data.count {
            let end = min(offset + WireCodec.backupChunkBytes, data.count)
            records.append(["b64": data[offset..<end].base64EncodedString()])
            offset = end
        }
        logger.info("backup taken", metadata: ["bytes": "\(data.count)", "generation": "\(identity.generation)"])
        return .list(header: ["bytes": String(data.count), "store": identity.id,
                              "generation": String(identity.generation)], tag: WireCodec.dataTag, records: records)
    }

    func statistics() async throws -> Fields {
        let networks = try await store.networks()
        let hosts = try await store.hosts()
        let store = self.store.statistics()
        var f = Fields()
        f.append("uptime-seconds", String((ContinuousClock.now - started).components.seconds))
        f.append("connections", String(counters.connections.open.load(ordering: .relaxed)))
        f.append("connections-total", String(counters.connections.total.load(ordering: .relaxed)))
        f.append("connections-refused", String(counters.connections.refused.load(ordering: .relaxed)))
        f.append("watchers", String(events.watcherCount))
        f.append("requests", String(counters.requests.load(ordering: .relaxed)))
        f.append("errors", String(counters.errors.load(ordering: .relaxed)))
        let identity = self.store.identity()
        f.append("store-id", identity.id)
        f.append("store-generation", String(identity.generation))
        f.append("store-operations", String(store.operations))
        f.append("store-commits", String(store.commits))
        f.append("store-failed-commits", String(store.failedCommits))
        f.append("store-largest-batch", String(store.largestBatch))
        f.append("networks", String(networks.count))
        f.append("hosts-up", String(hosts.filter { $0.state == .up }.count))
        f.append("hosts-lost", String(hosts.filter { $0.state == .lost }.count))
        f.append("leases-active", String(networks.reduce(0) { $0 + $1.counts.active }))
        f.append("leases-reserved", String(networks.reduce(0) { $0 + $1.counts.reserved }))
        f.append("leases-conflict", String(networks.reduce(0) { $0 + $1.counts.conflict }))
        f.append("leases-cooldown", String(networks.reduce(0) { $0 + $1.counts.cooldown }))
        return f
    }
}
