import CSQLite
import Foundation
import Logging
import NetleaseCore

/// The default lease store: the ledger in memory, an SQLite file (WAL, `synchronous=FULL`) as its durable log.
///
/// Design notes:
/// - Group commit, reads behind the batch in flight and the rebuild after a failed commit are `GroupCommitStore`'s
///   (shared with the PostgreSQL store); this type opens the file and keeps it honest.
/// - The `(network, address)` primary key and the partial unique index on active owners are the last guard: if
///   the ledger ever produced a duplicate, the commit fails, the whole batch is refused with `storage` and the
///   ledger is rebuilt from the file.
/// - `locking_mode=EXCLUSIVE` holds the file for this process: a second coordinator on the same data directory
///   fails at start instead of silently diverging.
public final class SQLiteLeaseStore: GroupCommitBacked {
    public static let fileName = "netlease.db"
    /// `PRAGMA application_id`: marks a file as ours ("NLSE").
    static let applicationID: Int64 = 0x4E4C_5345

    public let core: GroupCommitStore
    public let path: String
    public var storeID: String { core.storeID }
    public var backend: StoreBackend { .sqlite }

    /// Most changes committed in one transaction unless told otherwise.
    public static let defaultMaxBatch = GroupCommitStore.defaultMaxBatch
    public var maxBatch: Int { core.maxBatch }

    /// Opens (or creates) the store in `directory`. Refuses a file that is not a netlease database, one that fails
    /// SQLite's integrity check, or one held by another process, without changing it.
    /// - Parameter maxBatch: most operations committed in one transaction. 1 turns group commit off (one fsync per
    ///   operation), for comparison in benchmarks.
    /// - Parameter commitObserver: told about each durable commit (the coordinator's metrics).
    public init(
        directory: String,
        clock: LeaseClock = SystemLeaseClock(),
        maxBatch: Int = SQLiteLeaseStore.defaultMaxBatch,
        commitObserver: (any CommitObserver)? = nil,
        logger: Logger = Logger(label: "netlease.store")
    ) throws {
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        self.path = path
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
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
            for repair in try Self.wrap({ try Schema.repairVNIs(db) }) {
                logger.warning(
                    "network had a VNI outside 1-16777215; given the lowest free one",
                    metadata: [
                        "network": "\(repair.network)", "from": "\(repair.from)", "to": "\(repair.to)",
                    ]
                )
            }
            let storeID = try Self.wrap { try db.scalarText("SELECT value FROM meta WHERE key = 'store-id'") } ?? ""
            let journal = SQLiteJournal(database: db, storeID: storeID)
            let snapshot = try Self.wrap { try journal.load(now: clock.now()) }
            core = GroupCommitStore(
                journal: journal,
                snapshot: snapshot,
                clock: clock,
                maxBatch: maxBatch,
                label: "netlease.store.writer",
                commitObserver: commitObserver,
                logger: logger
            )
        } catch {
            db.close()
            throw error
        }
    }

    /// SQLite's `synchronous` setting of the writer connection (2 = FULL).
    public func synchronousSetting() throws -> Int64 {
        try core.withJournal { journal in
            try Self.wrap { try (journal as! SQLiteJournal).database.scalarInt("PRAGMA synchronous") ?? -1 }
        }
    }

    // MARK: opening

    private static func checkHeader(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        let header = (try? handle.read(upToCount: 16)) ?? Data()
        guard !header.isEmpty else { return }
        guard header == Data("SQLite format 3\0".utf8) else {
            throw NetleaseError(
                .storage,
                "\(path) is not an SQLite database; refusing to start (move it away or point --data elsewhere)"
            )
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
                .storage,
                "\(path) failed SQLite's integrity check (\(check ?? "no answer")); refusing to start. "
                    + "Restore it from a backup; the file was left untouched"
            )
        }
        let tables = try wrap { try db.scalarInt("SELECT count(*) FROM sqlite_master") } ?? 0
        let id = try wrap { try db.scalarInt("PRAGMA application_id") } ?? 0
        if tables > 0 && id != applicationID {
            throw NetleaseError(
                .storage,
                "\(path) is an SQLite database of another application (application_id \(id)); refusing to start"
            )
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
            if error.isFull {
                return NetleaseError(.storage, "cannot \(what): the disk is full", cause: error.description)
            }
            if error.isConstraint {
                return NetleaseError(
                    .storage,
                    "cannot \(what): a uniqueness guard refused the change",
                    cause: error.description
                )
            }
            return NetleaseError(.storage, "cannot \(what): \(error.message)", cause: error.description)
        }
        return NetleaseError(.storage, "cannot \(what): \(error)")
    }
}
