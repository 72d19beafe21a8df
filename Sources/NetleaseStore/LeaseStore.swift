import NetleaseCore

/// Where the cluster's lease state lives. Narrow and domain-shaped: every method is one atomic step that keeps the
/// invariants, and returns only after its effect is durable. Reads reflect every acknowledged write.
///
/// The SQLite implementation keeps the ledger in memory with the file as its durable log; a PostgreSQL
/// implementation (several coordinators, one replicated store) would implement the same methods with row locks.
public protocol LeaseStore: Sendable {
    func createNetwork(_ spec: NetworkSpec) async throws -> NetworkSpec
    func deleteNetwork(_ name: String) async throws
    func networks() async throws -> [NetworkSummary]
    func network(_ name: String) async throws -> NetworkSummary

    /// `Ledger.join`; `lastEpoch` is the highest epoch the host's agent was given before, if it says.
    func join(
        host: String,
        underlay: IPv4Address,
        networks: [String],
        lastEpoch: Int64?
    ) async throws
        -> Ledger.JoinResult
    func hosts() async throws -> [HostRecord]
    func removeHost(_ name: String) async throws -> Int

    func reserve(network: String, address: IPv4Address, note: String) async throws -> Lease
    func unreserve(network: String, address: IPv4Address) async throws
    func reportConflict(network: String, address: IPv4Address, mac: String, claim: HostClaim) async throws -> Lease
    func leases(_ filter: Ledger.LeaseFilter) async throws -> [Lease]
    func reconcile(
        network: String,
        owner: String,
        address: IPv4Address,
        ifname: String,
        claim: HostClaim
    )
        async throws -> ReconcileOutcome
    /// `Ledger.handOver`: `from`'s active lease of `address` on the claiming host becomes `owner`'s.
    func handOver(
        network: String,
        address: IPv4Address,
        from: String,
        owner: String,
        ifname: String,
        claim: HostClaim
    ) async throws -> Lease

    // The hot verbs, without suspension, for servers that pipeline a connection's requests: each applies at once,
    // in call order with every other operation, and calls `done` once its effect is durable, so operations
    // submitted in order complete in that order. `done` runs on the store's thread (or the caller's, when nothing
    // is pending) and must not block. The async forms below wrap these.
    func acquire(
        network: String,
        owner: String,
        claim: HostClaim?,
        address: IPv4Address?,
        ifname: String,
        done: @escaping @Sendable (Result<Lease, Error>) -> Void
    )
    func release(
        network: String,
        owner: String?,
        address: IPv4Address?,
        claim: HostClaim?,
        done: @escaping @Sendable (Result<Lease?, Error>) -> Void
    )
    func heartbeat(host: String, epoch: Int64, done: @escaping @Sendable (Result<HostRecord, Error>) -> Void)

    /// Marks hosts lost after their TTL, moves their leases to cooldown, ends finished cooldowns. `unobserved`
    /// milliseconds the coordinator did not run (a stall the caller measured) first extend every up host's
    /// deadline (`Ledger.reclaim(now:unobserved:changes:)`).
    func reclaim(unobserved: Millis) async throws -> [String]
    func statistics() -> StoreStatistics
    /// Which store this is and how many changing commits it has seen.
    func identity() -> StoreIdentity
    /// Where the state is kept.
    var backend: StoreBackend { get }
    /// Leader or standby, for a coordinator on a shared database; nil for a store of its own.
    func leadershipStatus() -> LeadershipStatus?
    /// Writes a consistent copy of the whole store to `path` (a new file) while the store keeps serving.
    func backup(to path: String) async throws -> StoreIdentity
    func close()
}

/// The kinds of store (`STATS` shows it as `store`).
public enum StoreBackend: String, Sendable, CaseIterable {
    /// One coordinator, an SQLite file in its data directory.
    case sqlite
    /// Several coordinators (one leader) on one PostgreSQL database.
    case postgres
}

/// A store's identity: a random id made when the store was created, and its generation (changing commits so far).
/// A coordinator restored from an older backup has the same id and a lower generation.
public struct StoreIdentity: Sendable, Equatable {
    public var id: String
    public var generation: Int64

    public init(id: String, generation: Int64) {
        self.id = id
        self.generation = generation
    }
}

public struct StoreStatistics: Sendable, Equatable {
    /// Operations answered (reads and writes).
    public var operations: Int = 0
    /// Durable transactions committed; operations / commits is the group-commit factor.
    public var commits: Int = 0
    public var failedCommits: Int = 0
    public var largestBatch: Int = 0

    public init() {}
}

extension LeaseStore {
    public func leadershipStatus() -> LeadershipStatus? { nil }

    /// A reclaim pass with no stall to account for.
    public func reclaim() async throws -> [String] { try await reclaim(unobserved: 0) }

    public func acquire(
        network: String,
        owner: String,
        claim: HostClaim?,
        address: IPv4Address?,
        ifname: String
    )
        async throws -> Lease
    {
        try await withCheckedThrowingContinuation { continuation in
            acquire(network: network, owner: owner, claim: claim, address: address, ifname: ifname) {
                continuation.resume(with: $0)
            }
        }
    }

    public func release(
        network: String,
        owner: String?,
        address: IPv4Address?,
        claim: HostClaim?
    ) async throws
        -> Lease?
    {
        try await withCheckedThrowingContinuation { continuation in
            release(network: network, owner: owner, address: address, claim: claim) { continuation.resume(with: $0) }
        }
    }

    public func heartbeat(host: String, epoch: Int64) async throws -> HostRecord {
        try await withCheckedThrowingContinuation { continuation in
            heartbeat(host: host, epoch: epoch) { continuation.resume(with: $0) }
        }
    }
}

extension LeaseStore {
    /// A join without the agent's last epoch.
    public func join(host: String, underlay: IPv4Address, networks: [String]) async throws -> Ledger.JoinResult {
        try await join(host: host, underlay: underlay, networks: networks, lastEpoch: nil)
    }
}
