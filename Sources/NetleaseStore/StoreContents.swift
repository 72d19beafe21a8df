import NetleaseCore

/// Everything a store holds, as rows: what moves when a store is copied into another (`netlease migrate`, a
/// PostgreSQL store's backup as an SQLite file). Heartbeat times are not state (see DESIGN.md: Store).
public struct StoreContents: Sendable, Equatable {
    public var storeID: String
    public var generation: Int64
    /// Highest epoch ever issued.
    public var lastEpoch: Int64
    public var networks: [NetworkSpec]
    public var hosts: [HostRecord]
    /// Every record of every state, cooldowns included.
    public var leases: [Lease]

    public init(
        storeID: String,
        generation: Int64,
        lastEpoch: Int64,
        networks: [NetworkSpec],
        hosts: [HostRecord],
        leases: [Lease]
    ) {
        self.storeID = storeID
        self.generation = generation
        self.lastEpoch = lastEpoch
        self.networks = networks
        self.hosts = hosts
        self.leases = leases
    }

    /// The ledger these rows make; hosts that were up get a full TTL of grace from `now`, and with
    /// `restartingCooldowns` every cooldown its full length (`Ledger.init`).
    public func ledger(now: Millis, restartingCooldowns: Bool = false) -> Ledger {
        Ledger(
            networks: networks,
            hosts: hosts,
            leases: leases,
            lastEpoch: lastEpoch,
            now: now,
            restartingCooldowns: restartingCooldowns
        )
    }

    /// The changes that write these rows into an empty store, in an order its keys accept.
    public var changes: [LedgerChange] {
        networks.map(LedgerChange.insertNetwork) + hosts.map(LedgerChange.upsertHost)
            + leases.map(LedgerChange.insertLease) + [.recordEpoch(lastEpoch)]
    }

    /// "N networks, N hosts, N leases (N active, N reserved, N conflict, N cooldown)".
    public var summary: String {
        let states = LeaseState.allCases.map { state in
            "\(leases.filter { $0.state == state }.count) \(state.rawValue)"
        }
        return "\(networks.count) networks, \(hosts.count) hosts, \(leases.count) leases "
            + "(\(states.joined(separator: ", ")))"
    }
}
