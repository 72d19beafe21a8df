import CSQLite
import Dispatch
import Foundation
import Logging
import NetleaseCore
import Synchronization

/// The default lease store: the ledger in memory, an SQLite file (WAL, `synchronous=FULL`) as its durable log.
///
/// Design notes:
/// - Every operation runs against the in-memory `Ledger` under one lock, in arrival order, and appends the row
///   changes it made. Those changes join the pending batch; a single writer commits whole batches in one
///   transaction (group commit) and only then completes each operation. So an acknowledgement always follows the
///   durable commit containing its change, and concurrent requests share one fsync.
/// - Reads wait for the batch in flight too, so nobody sees state that might still be rolled back.
/// - The `(network, address)` primary key and the partial unique index on active owners are the last guard: if
///   the ledger ever produced a duplicate, the commit fails, the whole batch is refused with `storage` and the
///   ledger is rebuilt from the file.
/// - `locking_mode=EXCLUSIVE` holds the file for this process: a second coordinator on the same data directory
///   fails at start instead of silently diverging.
public final class SQLiteLeaseStore: LeaseStore {
    public static let fileName = "netlease.db"
    /// `PRAGMA application_id`: marks a file as ours ("NLSE").
    static let applicationID: Int64 = 0x4E4C_5345

    private struct PendingOperation {
        var changes: [LedgerChange]
        var complete: @Sendable (NetleaseError?) -> Void
    }

    private struct State: ~Copyable {
        var ledger: Ledger
        var pending: [PendingOperation] = []
        var writing = false
        var statistics = StoreStatistics()
        var failure: NetleaseError?
        var generation: Int64
    }

    private let state: Mutex<State>
    private let clock: LeaseClock
    private let logger: Logger
    private let commitObserver: (any CommitObserver)?
    private let writerQueue = DispatchQueue(label: "netlease.store.writer")
    /// Touched only on `writerQueue` after init. nonisolated(unsafe): confined to that queue by construction.
    nonisolated(unsafe) private let database: SQLiteDatabase
    public let path: String
    public let storeID: String

    /// Opens (or creates) the store in `directory`. Refuses a file that is not a netlease database, one that fails
    /// SQLite's integrity check, or one held by another process, without changing it.
    /// Most operations committed in one transaction. 1 turns group commit off (one fsync per operation), for
    /// comparison in benchmarks.
    /// Most changes committed in one transaction unless told otherwise.
    public static let defaultMaxBatch = 4096
    public let maxBatch: Int

    /// - Parameter commitObserver: told about each durable commit (the coordinator's metrics).
    public init(directory: String, clock: LeaseClock = SystemLeaseClock(), maxBatch: Int = SQLiteLeaseStore.defaultMaxBatch,
                commitObserver: (any CommitObserver)? = nil, logger: Logger = Logger(label: "netlease.store")) throws
    {
        self.maxBatch = max(1, maxBatch)
        self.clock = clock
        self.logger = logger
        self.commitObserver = commitObserver
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        self.path = path
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw NetleaseError(.storage, "cannot create data directory \(directory): \(error.localizedDescription)")
        }
        try Self.checkHeader(path)
        let db = try Self.wrap { try SQLiteDatabase(path: path) }
        do {
            try Self.claim(db, path: path)
            try Self.checkIdentity(db, path: path)
            try Self.configureDurability(db, path: path)
            try Self.wrap { try Schema.migrate(db) }
            let storeID = try Self.wrap { try db.scalarText("SELECT value FROM meta WHERE key = 'store-id'") } ?? ""
            let ledger = try Self.wrap { try Self.load(db, now: clock.now()) }
            self.storeID = storeID
            database = db
            let generation = try Self.wrap { try Schema.generation(db) }
            state = Mutex(State(ledger: ledger, generation: generation))
        } catch {
            db.close()
            throw error
        }
    }

    /// SQLite's `synchronous` setting of the writer connection (2 = FULL).
    public func synchronousSetting() throws -> Int64 {
        try writerQueue.sync { try Self.wrap { try database.scalarInt("PRAGMA synchronous") ?? -1 } }
    }

    public func close() {
        writerQueue.sync { database.close() }
    }

    // MARK: LeaseStore

    public func createNetwork(_ spec: NetworkSpec) async throws -> NetworkSpec {
        try await perform { ledger, now, changes in try ledger.createNetwork(spec, now: now, changes: &changes) }
    }

    public func deleteNetwork(_ name: String) async throws {
        try await perform { ledger, _, changes in try ledger.deleteNetwork(name, changes: &changes) }
    }

    public func networks() async throws -> [NetworkSummary] {
        try await perform { ledger, _, _ in
            ledger.books.keys.sorted().map { NetworkSummary(spec: ledger.books[$0]!.spec, counts: ledger.books[$0]!.counts) }
        }
    }

    public func network(_ name: String) async throws -> NetworkSummary {
        try await perform { ledger, _, _ in
            let book = try ledger.network(name)
            return NetworkSummary(spec: book.spec, counts: book.counts)
        }
    }

    public func join(host: String, underlay: IPv4Address, networks: [String]) async throws -> Ledger.JoinResult {
        try await perform { ledger, now, changes in
            try ledger.join(host: host, underlay: underlay, networks: networks, now: now, changes: &changes)
        }
    }

    public func hosts() async throws -> [HostRecord] {
        try await perform { ledger, _, _ in ledger.hosts.values.sorted { $0.name < $1.name } }
    }

    public func removeHost(_ name: String) async throws -> Int {
        try await perform { ledger, now, changes in try ledger.removeHost(name, now: now, changes: &changes) }
    }

    public func acquire(network: String, owner: String, claim: HostClaim?, address: IPv4Address?, ifname: String,
                        done: @escaping @Sendable (Result<Lease, Error>) -> Void)
    {
        submit({ ledger, now, changes in
            try ledger.acquire(
                network: network, owner: owner, claim: claim, wanted: address, ifname: ifname, now: now,
                changes: &changes)
        }, done: done)
    }

    public func release(network: String, owner: String?, address: IPv4Address?, claim: HostClaim?,
                        done: @escaping @Sendable (Result<Lease?, Error>) -> Void)
    {
        submit({ ledger, now, changes in
            try ledger.release(network: network, owner: owner, address: address, claim: claim, now: now, changes: &changes)
        }, done: done)
    }

    public func heartbeat(host: String, epoch: Int64, done: @escaping @Sendable (Result<HostRecord, Error>) -> Void) {
        submit({ ledger, now, changes in
            try ledger.heartbeat(host: host, epoch: epoch, now: now, changes: &changes)
        }, done: done)
    }

    public func reserve(network: String, address: IPv4Address, note: String) async throws -> Lease {
        try await perform { ledger, now, changes in
            try ledger.reserve(network: network, address: address, note: note, now: now, changes: &changes)
        }
    }

    public func unreserve(network: String, address: IPv4Address) async throws {
        try await perform { ledger, _, changes in try ledger.unreserve(network: network, address: address, changes: &changes) }
    }

    public func reportConflict(network: String, address: IPv4Address, mac: String, claim: HostClaim) async throws
        -> Lease
    {
        try await perform { ledger, now, changes in
            try ledger.reportConflict(network: network, address: address, mac: mac, claim: claim, now: now, changes: &changes)
        }
    }

    public func leases(_ filter: Ledger.LeaseFilter) async throws -> [Lease] {
        try await perform { ledger, _, _ in try ledger.leases(filter) }
    }

    public func reconcile(network: String, owner: String, address: IPv4Address, ifname: String, claim: HostClaim)
        async throws -> ReconcileOutcome
    {
        try await perform { ledger, now, changes in
            try ledger.reconcile(
                network: network, owner: owner, address: address, ifname: ifname, claim: claim, now: now,
                changes: &changes)
        }
    }

    public func reclaim() async throws -> [String] {
        try await perform { ledger, now, changes in ledger.reclaim(now: now, changes: &changes) }
    }

    public func statistics() -> StoreStatistics {
        state.withLock { $0.statistics }
    }

    public func identity() -> StoreIdentity {
        StoreIdentity(id: storeID, generation: state.withLock { $0.generation })
    }

    public func backup(to path: String) async throws -> StoreIdentity {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw NetleaseError(.conflict, "\(path) exists; a backup never overwrites a file")
        }
        let id = storeID
        return try await withCheckedThrowingContinuation { continuation in
            // Queued behind any drain in progress: the copy holds exactly the commits acknowledged before it.
            writerQueue.async {
                do {
                    try self.database.backup(to: path)
                    let generation = try Schema.generation(self.database)
                    continuation.resume(returning: StoreIdentity(id: id, generation: generation))
                } catch {
                    try? FileManager.default.removeItem(atPath: path)
                    continuation.resume(throwing: Self.storageError(error, doing: "back up to \(path)"))
                }
            }
        }
    }

    // MARK: group commit

    /// Runs `body` on the ledger in arrival order, then completes after the batch holding its changes is durable.
    /// Changes made before `body` throws are valid on their own (the ledger guarantees it) and are committed too.
    private func perform<T: Sendable>(
        _ body: (inout Ledger, Millis, inout [LedgerChange]) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            submit(body) { continuation.resume(with: $0) }
        }
    }

    /// Applies `body` to the ledger now, on the caller's thread and in call order with every other operation, and
    /// calls `done` once its changes are durable: from the writer's queue after the commit holding them, or at once
    /// (on the caller's thread, before `submit` returns) when nothing uncommitted is ahead of it and it changed
    /// nothing. So callers that submit in order are completed in that order. `done` must not block.
    private func submit<T: Sendable>(
        _ body: (inout Ledger, Millis, inout [LedgerChange]) throws -> T,
        done: @escaping @Sendable (Result<T, Error>) -> Void
    ) {
        let now = clock.now()
        let immediate = state.withLock { s -> Result<T, Error>? in
            if let failure = s.failure { return .failure(failure) }
            var changes: [LedgerChange] = []
            let result = Result<T, Error> { try body(&s.ledger, now, &changes) }
            s.statistics.operations += 1
            if changes.isEmpty && s.pending.isEmpty && !s.writing {
                return result  // nothing uncommitted is visible: answer now
            }
            s.pending.append(PendingOperation(changes: changes) { error in
                if let error { done(.failure(error)) } else { done(result) }
            })
            if !s.writing {
                s.writing = true
                writerQueue.async { self.drain() }
            }
            return nil
        }
        if let immediate { done(immediate) }
    }

    /// Commits pending batches until none is left. Runs on `writerQueue` only.
    private func drain() {
        while true {
            let batch = state.withLock { s -> [PendingOperation]? in
                guard !s.pending.isEmpty else {
                    s.writing = false
                    return nil
                }
                let take = min(s.pending.count, maxBatch)
                let batch = Array(s.pending.prefix(take))
                s.pending.removeFirst(take)
                return batch
            }
            guard let batch else { return }
            // Reads queued behind a commit need no transaction of their own.
            guard batch.contains(where: { !$0.changes.isEmpty }) else {
                for operation in batch { operation.complete(nil) }
                continue
            }
            let began = ContinuousClock.now
            do {
                try database.transaction {
                    for operation in batch {
                        for change in operation.changes { try Schema.write(change, to: database) }
                    }
                    try Schema.bumpGeneration(database)
                }
                let duration = ContinuousClock.now - began
                state.withLock { s in
                    s.generation += 1
                    s.statistics.commits += 1
                    s.statistics.largestBatch = max(s.statistics.largestBatch, batch.count)
                }
                commitObserver?.committed(operations: batch.count, duration: duration)
                for operation in batch { operation.complete(nil) }
            } catch {
                let failure = Self.storageError(error, doing: "commit")
                logger.error("commit failed; rebuilding the ledger from the file", metadata: ["error": "\(error)"])
                let failed = state.withLock { s -> [PendingOperation] in
                    s.statistics.failedCommits += 1
                    let later = s.pending
                    s.pending = []
                    do {
                        s.ledger = try Self.load(database, now: clock.now())
                    } catch {
                        s.failure = Self.storageError(error, doing: "reload after a failed commit")
                        logger.critical("cannot reload the ledger; refusing all requests", metadata: ["error": "\(error)"])
                    }
                    return later
                }
                for operation in batch + failed { operation.complete(failure) }
            }
        }
    }

    // MARK: opening

    private static func load(_ db: SQLiteDatabase, now: Millis) throws -> Ledger {
        let networks = try Schema.networks(db)
        let prefixes = Dictionary(uniqueKeysWithValues: networks.map { ($0.name, $0.subnet.prefix) })
        let lastEpoch = Int64(try db.scalarText("SELECT value FROM meta WHERE key = 'last-epoch'") ?? "0") ?? 0
        return Ledger(networks: networks, hosts: try Schema.hosts(db), leases: try Schema.leases(db, prefixes: prefixes),
                      lastEpoch: lastEpoch, now: now)
    }

    private static func checkHeader(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        let header = (try? handle.read(upToCount: 16)) ?? Data()
        guard !header.isEmpty else { return }
        guard header == Data("SQLite format 3\0".utf8) else {
            throw NetleaseError(
                .storage, "\(path) is not an SQLite database; refusing to start (move it away or point --data elsewhere)")
        }
    }

    /// Takes the exclusive lock now rather than at the first write. Changes nothing in the file: the journal mode is
    /// switched only after `checkIdentity` accepted it.
    private static func claim(_ db: SQLiteDatabase, path: String) throws {
        do {
            try db.execute("PRAGMA locking_mode=EXCLUSIVE")
            try db.execute("BEGIN IMMEDIATE")
            try db.execute("COMMIT")
        } catch let error as SQLiteError where error.isBusy {
            throw NetleaseError(.storage, "\(path) is in use by another process (is another coordinator running?)")
        } catch {
            throw storageError(error, doing: "open \(path)")
        }
    }

    /// WAL with `synchronous=FULL`: an acknowledged commit survives a crash of the process and of the machine.
    private static func configureDurability(_ db: SQLiteDatabase, path: String) throws {
        do {
            try db.execute("PRAGMA journal_mode=WAL")
            try db.execute("PRAGMA synchronous=FULL")
            // 8 MiB of page cache (SQLite's default is 2 MiB): a /16 full of leases is a B-tree of ~10 MB, and with
            // the default cache every commit at 99 % fill re-read pages through the OS (acquire throughput at 99 %
            // fill was 0.86 of empty; 0.92 with 8 MiB, for ~6 MiB more resident memory).
            try db.execute("PRAGMA cache_size=-8192")
            try db.execute("PRAGMA foreign_keys=ON")
        } catch {
            throw storageError(error, doing: "configure \(path)")
        }
    }

    private static func checkIdentity(_ db: SQLiteDatabase, path: String) throws {
        let check: String?
        do {
            check = try db.scalarText("PRAGMA quick_check")
        } catch {
            check = "\(error)"
        }
        guard check == "ok" else {
            throw NetleaseError(
                .storage, "\(path) failed SQLite's integrity check (\(check ?? "no answer")); refusing to start. "
                    + "Restore it from a backup; the file was left untouched")
        }
        let tables = try wrap { try db.scalarInt("SELECT count(*) FROM sqlite_master") } ?? 0
        let id = try wrap { try db.scalarInt("PRAGMA application_id") } ?? 0
        if tables > 0 && id != applicationID {
            throw NetleaseError(
                .storage, "\(path) is an SQLite database of another application (application_id \(id)); refusing to start")
        }
    }

    static func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as NetleaseError { throw error } catch {
            throw storageError(error, doing: "access the database")
        }
    }

    static func storageError(_ error: Error, doing what: String) -> NetleaseError {
        if let error = error as? NetleaseError { return error }
        if let error = error as? SQLiteError {
            if error.isFull { return NetleaseError(.storage, "cannot \(what): the disk is full", cause: error.description) }
            if error.isConstraint {
                return NetleaseError(.storage, "cannot \(what): a uniqueness guard refused the change", cause: error.description)
            }
            return NetleaseError(.storage, "cannot \(what): \(error.message)", cause: error.description)
        }
        return NetleaseError(.storage, "cannot \(what): \(error)")
    }
}
