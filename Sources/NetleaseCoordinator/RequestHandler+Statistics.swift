import NetleaseTransport
import NetleaseWire
import Synchronization

/// Request counters shared by all connections, reported by STATS.
public final class ServerCounters: Sendable {
    let requests = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let connections: ConnectionCounters

    public init(connections: ConnectionCounters = ConnectionCounters()) { self.connections = connections }
}

extension RequestHandler {
    /// STATS: the server's counters, the store's commit figures and the pool totals over every network.
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
