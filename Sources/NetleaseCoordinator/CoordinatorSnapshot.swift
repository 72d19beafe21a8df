import NetleaseCore

/// What STATS and the metrics' gauges report, read once: every network's pool counts, the hosts, the open
/// connections and the watchers among them. Both render from this one read, so at the same moment they agree.
public struct CoordinatorSnapshot: Sendable {
    public var networks: [NetworkSummary]
    public var hosts: [HostRecord]
    /// Open line connections, watchers included.
    public var connections: Int
    /// Connections that turned into event streams (WATCH).
    public var watchers: Int
    /// Connections that have not authenticated (yet).
    public var unauthenticated: Int
    /// Connections authenticated with the read-only secret, watchers among them included.
    public var readers: Int

    public init(
        networks: [NetworkSummary],
        hosts: [HostRecord],
        connections: Int,
        watchers: Int,
        unauthenticated: Int = 0,
        readers: Int = 0
    ) {
        self.networks = networks
        self.hosts = hosts
        self.connections = connections
        self.watchers = watchers
        self.unauthenticated = unauthenticated
        self.readers = readers
    }
}

extension RequestHandler {
    /// Reads the snapshot: the store's networks and hosts (each read waits for the commit in flight, so neither
    /// shows unacknowledged state), then the connection counts. A standby has no ledger: no networks, no hosts.
    func snapshot() async throws -> CoordinatorSnapshot {
        let serving = store.leadershipStatus()?.serving ?? true
        let networks = serving ? try await store.networks() : []
        let hosts = serving ? try await store.hosts() : []
        return CoordinatorSnapshot(
            networks: networks,
            hosts: hosts,
            connections: counters.connections.open.load(ordering: .relaxed),
            watchers: events.watcherCount,
            unauthenticated: counters.admission?.unauthenticatedCount ?? 0,
            readers: counters.admission?.readerCount ?? 0
        )
    }
}
