import NetleaseCore

/// The durable side of a `GroupCommitStore`: where the ledger's changes are written and whence the ledger is read
/// back. One per backend (SQLite file, PostgreSQL database). Everything else — the ledger in memory, the pending
/// batch, the single writer, completing operations only after their commit — is the store's and is shared.
///
/// Confinement: after the store is made, every call comes from the store's writer queue, one at a time. A journal
/// never sees two calls at once and needs no locking of its own.
public protocol LedgerJournal: AnyObject {
    /// The random id made when the durable store was created.
    var storeID: String { get }

    /// Reads the whole durable state: the ledger (hosts that were up get a full TTL of grace from `now`) and the
    /// generation (changing commits so far).
    func load(now: Millis) throws -> JournalSnapshot

    /// Writes every change of `batch`, in order, in one transaction that also advances the generation by one, and
    /// returns only once that transaction is durable. On any error nothing of the batch may remain applied.
    /// Returns the generation the commit made.
    func commit(_ batch: JournalBatch) throws -> Int64

    /// Writes a consistent copy of the durable state as an SQLite store file into `path`, an empty file the store
    /// made for it (mode 0600; the store removes it when this throws), between commits, so it holds exactly the
    /// acknowledged ones. Returns the copy's generation.
    func backup(to path: String) throws -> Int64

    /// The error operators see for a failure of this journal while doing `what`.
    func storageError(_ error: Error, doing what: String) -> NetleaseError

    /// Releases the connection or file. Later calls fail.
    func close()
}

/// What a journal reads back.
public struct JournalSnapshot: Sendable {
    public var ledger: Ledger
    public var generation: Int64

    public init(ledger: Ledger, generation: Int64) {
        self.ledger = ledger
        self.generation = generation
    }
}

/// The operations of one group commit, handed to `LedgerJournal.commit`. Only their changes are visible.
public struct JournalBatch {
    let operations: [GroupCommitStore.PendingOperation]

    /// Operations in the batch (some may have changed nothing).
    public var operationCount: Int { operations.count }

    /// Changes in the batch, counted.
    public var changeCount: Int { operations.reduce(0) { $0 + $1.changes.count } }

    /// Calls `body` with every change, in the order the ledger made them.
    public func forEachChange(_ body: (LedgerChange) throws -> Void) rethrows {
        for operation in operations {
            for change in operation.changes { try body(change) }
        }
    }

    /// A batch of bare changes, for tools that write outside a store (e.g. copying one store into another).
    public init(changes: [LedgerChange]) {
        operations = [GroupCommitStore.PendingOperation(changes: changes) { _ in }]
    }

    init(operations: [GroupCommitStore.PendingOperation]) {
        self.operations = operations
    }
}
