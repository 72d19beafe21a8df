import NetleaseCore
import NetleaseTransport
import NetleaseWire
import Synchronization

/// Request counters shared by all connections, reported by STATS.
public final class ServerCounters: Sendable {
    let requests = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let connections: ConnectionCounters
    /// The server's admission caps, for the unauthenticated and reader counts; nil: none.
    let admission: ConnectionAdmission?

    public init(connections: ConnectionCounters = ConnectionCounters(), admission: ConnectionAdmission? = nil) {
        self.connections = connections
        self.admission = admission
    }
}

extension RequestHandler {
    /// STATS: the server's counters, the store's commit figures and the pool totals over every network.
    /// Also on a standby (PING, AUTH, QUIT and STATS are all it answers): then without the ledger's counts. The
    /// pool, host and connection figures come from `snapshot()`, as the metrics' gauges do.
    func statistics() async throws -> Fields {
        let leadership = store.leadershipStatus()
        let serving = leadership?.serving ?? true
        let snapshot = try await snapshot()
        let (networks, hosts) = (snapshot.networks, snapshot.hosts)
        let store = self.store.statistics()
        var f = Fields()
        f.append("version", NetleaseVersion.current)
        f.append("uptime-seconds", String((ContinuousClock.now - started).components.seconds))
        f.append("connections", String(snapshot.connections))
        f.append("connections-total", String(counters.connections.total.load(ordering: .relaxed)))
        f.append("connections-refused", String(counters.connections.refused.load(ordering: .relaxed)))
        f.append("watchers", String(snapshot.watchers))
        f.append("connections-unauthenticated", String(snapshot.unauthenticated))
        f.append("connections-readers", String(snapshot.readers))
        f.append("connections-evicted", String(counters.connections.evicted.load(ordering: .relaxed)))
        f.append("requests", String(counters.requests.load(ordering: .relaxed)))
        f.append("errors", String(counters.errors.load(ordering: .relaxed)))
        let identity = self.store.identity()
        f.append("store", self.store.backend.rawValue)
        if let leadership {
            f.append("role", leadership.role.rawValue)
            f.append("serving", serving ? "1" : "0")
            f.append("leader", leadership.leader)
            f.append("term", String(leadership.term))
        }
        f.append("store-id", identity.id)
        f.append("store-generation", String(identity.generation))
        f.append("store-operations", String(store.operations))
        f.append("store-commits", String(store.commits))
        f.append("store-failed-commits", String(store.failedCommits))
        f.append("store-largest-batch", String(store.largestBatch))
        guard serving else { return f }
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
