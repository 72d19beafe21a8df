import NetleaseCore

/// Where the cluster's lease state lives. Narrow and domain-shaped: every operation (`StoreOperation`, one case per
/// verb) is one atomic step that keeps the invariants, and completes only after its effect is durable. Reads reflect
/// every acknowledged write.
///
/// Both backends keep the ledger in memory with the database as its durable log (`GroupCommitStore`); a coordinator
/// on a shared database serves through a gate that forwards operations only while it leads. Each of them implements
/// `submit(_:)` once and gets every verb.
public protocol LeaseStore: Sendable {
    /// Applies `operation` at once, in call order with every other operation, and completes it once its effect is
    /// durable, so operations submitted in order complete in that order. Never suspends: servers that pipeline a
    /// connection's requests call it directly; everyone else uses the named verbs (`LeaseStore+Verbs.swift`).
    func submit(_ operation: StoreOperation)

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
}
