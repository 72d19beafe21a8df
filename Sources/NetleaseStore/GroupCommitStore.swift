import Dispatch
import Foundation
import Logging
import NetleaseCore
import Synchronization

/// The backend-independent lease store: the ledger in memory, its changes journaled by a `LedgerJournal` (an SQLite
/// file, a PostgreSQL database) with group commit.
///
/// Design notes:
/// - Every operation runs against the in-memory `Ledger` under one lock, in arrival order, and appends the row
///   changes it made. Those changes join the pending batch; a single writer commits whole batches in one
///   transaction (group commit) and only then completes each operation. So an acknowledgement always follows the
///   durable commit containing its change, and concurrent requests share one fsync (or one round trip).
/// - Reads wait for the batch in flight too, so nobody sees state that might still be rolled back.
/// - The journal's unique keys are the last guard: if the ledger ever produced a duplicate, the commit fails, the
///   whole batch is refused with `storage` and the ledger is rebuilt from the journal.
/// - When even the rebuild fails (the disk or the database is gone), every request is refused with that error, and
///   the first request after at least a second tries the rebuild again: a database that comes back is used again
///   without a restart, and nothing is answered from a ledger that may hold unacknowledged changes.
/// - The hot path (`submit`) takes the lock once and allocates only the pending entry; the journal is touched only
///   by the writer, once per batch.
public final class GroupCommitStore: Sendable {
    struct PendingOperation {
        var changes: [LedgerChange]
        var complete: @Sendable (NetleaseError?) -> Void
    }

    private struct State: ~Copyable {
        var ledger: Ledger
        var pending: [PendingOperation] = []
        var writing = false
        var statistics = StoreStatistics()
        var failure: NetleaseError?
        var recovering = false
        var lastRecovery: ContinuousClock.Instant?
        var generation: Int64
    }

    private let state: Mutex<State>
    private let clock: LeaseClock
    private let logger: Logger
    private let writerQueue: DispatchQueue
    /// Touched only on `writerQueue` after init. nonisolated(unsafe): confined to that queue by construction.
    nonisolated(unsafe) private let journal: any LedgerJournal
    private let commitObserver: (any CommitObserver)?
    public let storeID: String
    /// Most operations committed in one transaction.
    public let maxBatch: Int

    /// Most changes committed in one transaction unless told otherwise.
    public static let defaultMaxBatch = 4096

    /// Takes over `journal` (already opened and loaded into `snapshot` by the caller).
    /// - Parameter maxBatch: most operations committed in one transaction; 1 turns group commit off.
    /// - Parameter commitObserver: told about each durable commit (the coordinator's metrics).
    public init(
        journal: any LedgerJournal,
        snapshot: JournalSnapshot,
        clock: LeaseClock,
        maxBatch: Int,
        label: String,
        commitObserver: (any CommitObserver)? = nil,
        logger: Logger
    ) {
        self.journal = journal
        self.commitObserver = commitObserver
        self.clock = clock
        self.logger = logger
        self.maxBatch = max(1, maxBatch)
        storeID = journal.storeID
        writerQueue = DispatchQueue(label: label)
        state = Mutex(State(ledger: snapshot.ledger, generation: snapshot.generation))
    }

    /// Runs `body` with the journal on the writer queue, between commits.
    public func withJournal<T>(_ body: (any LedgerJournal) throws -> T) rethrows -> T {
        try writerQueue.sync { try body(journal) }
    }

    public func close() {
        writerQueue.sync { journal.close() }
    }

    // MARK: LeaseStore

    /// Applies `operation`'s ledger step now and completes it after the commit that holds its changes (`submit(_:done:)`).
    public func submit(_ operation: StoreOperation) {
        operation.dispatch(to: self)
    }

    public func statistics() -> StoreStatistics {
        state.withLock { $0.statistics }
    }

    public func identity() -> StoreIdentity {
        StoreIdentity(id: storeID, generation: state.withLock { $0.generation })
    }

    /// Writes a consistent copy (an SQLite store file) to `path`, queued behind any commit in progress: the copy
    /// holds exactly the commits acknowledged before it. The file is new and never readable by others
    /// (`BackupFile`); it is removed again when the copy fails.
    public func backup(to path: String) async throws -> StoreIdentity {
        try BackupFile.create(at: path)
        let id = storeID
        return try await withCheckedThrowingContinuation { continuation in
            writerQueue.async {
                do {
                    let generation = try self.journal.backup(to: path)
                    continuation.resume(returning: StoreIdentity(id: id, generation: generation))
                } catch {
                    unlink(path)
                    continuation.resume(throwing: self.journal.storageError(error, doing: "back up to \(path)"))
                }
            }
        }
    }

    // MARK: group commit

    /// Runs `body` on the ledger in arrival order, then completes after the batch holding its changes is durable.
    /// Changes made before `body` throws are valid on their own (the ledger guarantees it) and are committed too.
    public func perform<T: Sendable>(_ body: LedgerStep<T>) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            submit(body) { continuation.resume(with: $0) }
        }
    }

    /// Applies `body` to the ledger now, on the caller's thread and in call order with every other operation, and
    /// calls `done` once its changes are durable: from the writer's queue after the commit holding them, or at once
    /// (on the caller's thread, before `submit` returns) when nothing uncommitted is ahead of it and it changed
    /// nothing. So callers that submit in order are completed in that order. `done` must not block.
    public func submit<T: Sendable>(_ body: LedgerStep<T>, done: @escaping StoreOperation.Done<T>) {
        let now = clock.now()
        let immediate = state.withLock { s -> Result<T, Error>? in
            if let failure = s.failure {
                scheduleRecovery(&s)
                return .failure(failure)
            }
            var changes: [LedgerChange] = []
            let result = Result<T, Error> { try body(&s.ledger, now, &changes) }
            s.statistics.operations += 1
            if changes.isEmpty && s.pending.isEmpty && !s.writing {
                return result  // nothing uncommitted is visible: answer now
            }
            s.pending.append(
                PendingOperation(changes: changes) { error in
                    if let error { done(.failure(error)) } else { done(result) }
                }
            )
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
                let generation = try journal.commit(JournalBatch(operations: batch))
                let duration = ContinuousClock.now - began
                state.withLock { s in
                    s.generation = generation
                    s.statistics.commits += 1
                    s.statistics.largestBatch = max(s.statistics.largestBatch, batch.count)
                }
                commitObserver?.committed(operations: batch.count, duration: duration)
                for operation in batch { operation.complete(nil) }
            } catch {
                let failure = journal.storageError(error, doing: "commit")
                logger.error(
                    "commit failed; rebuilding the ledger from the journal",
                    metadata: ["error": "\(failure)", "cause": "\(failure.cause ?? "")"]
                )
                let now = clock.now()
                let reloaded = Result { try journal.load(now: now) }
                let failed = state.withLock { s -> [PendingOperation] in
                    s.statistics.failedCommits += 1
                    let later = s.pending
                    s.pending = []
                    switch reloaded {
                    case .success(let snapshot):
                        s.ledger = snapshot.ledger
                        s.generation = snapshot.generation
                    case .failure(let error):
                        let reloadFailure = journal.storageError(error, doing: "reload after a failed commit")
                        s.failure = reloadFailure
                        s.lastRecovery = .now
                        logger.critical(
                            "cannot reload the ledger; refusing all requests",
                            metadata: ["error": "\(reloadFailure)", "cause": "\(reloadFailure.cause ?? "")"]
                        )
                    }
                    return later
                }
                for operation in batch + failed { operation.complete(failure) }
            }
        }
    }

    /// After a failed reload: at most once a second, a request starts another attempt on the writer queue.
    private func scheduleRecovery(_ s: inout State) {
        guard !s.recovering else { return }
        let now = ContinuousClock.now
        if let last = s.lastRecovery, now - last < .seconds(1) { return }
        s.recovering = true
        s.lastRecovery = now
        writerQueue.async { self.recover() }
    }

    private func recover() {
        let reloaded = Result { try journal.load(now: clock.now()) }
        state.withLock { s in
            s.recovering = false
            switch reloaded {
            case .success(let snapshot):
                s.ledger = snapshot.ledger
                s.generation = snapshot.generation
                s.failure = nil
                logger.notice("ledger rebuilt from the journal; serving again")
            case .failure(let error):
                s.failure = journal.storageError(error, doing: "reload after a failed commit")
            }
        }
    }
}

extension GroupCommitStore: LedgerStepHandler {
    func handle<T: Sendable>(_ done: @escaping StoreOperation.Done<T>, step: LedgerStep<T>) {
        submit(step, done: done)
    }
}

/// A `LeaseStore` whose every operation is its `GroupCommitStore`'s: backends declare the core and add only what is
/// theirs (opening, settings).
public protocol GroupCommitBacked: LeaseStore {
    var core: GroupCommitStore { get }
}

extension GroupCommitBacked {
    public func submit(_ operation: StoreOperation) { core.submit(operation) }
    public func statistics() -> StoreStatistics { core.statistics() }
    public func identity() -> StoreIdentity { core.identity() }
    public func backup(to path: String) async throws -> StoreIdentity { try await core.backup(to: path) }
    public func close() { core.close() }
}
