import Foundation
import Logging
import NIOCore
import NetleaseCore
import NetleaseStore
import PostgresNIO

/// The PostgreSQL side of a `GroupCommitStore`: one connection for one leadership term, used by the store's writer
/// queue only.
///
/// Design notes:
/// - A batch is `BEGIN`, one `netlease_commit(term, …)` carrying every change, `COMMIT`; `commit` returns only
///   after `COMMIT` came back (with `synchronous_commit` not `off` and `fsync` on, checked at every connect), so an
///   acknowledgement always follows a durable commit.
/// - The term is fixed for the journal's life. `netlease_commit` re-checks it inside the batch's own transaction,
///   and every load checks it too: once another coordinator took a newer term, every commit and every reload fails
///   with `not-leader`, so this journal can never acknowledge again.
/// - A lost connection fails the batch in flight (the ledger is rebuilt from the database, which holds exactly the
///   committed batches — a batch whose COMMIT was sent but not answered may be among them, unacknowledged, which
///   idempotent retries make harmless). The next use reconnects.
final class PostgresJournal: LedgerJournal {
    let url: PostgresStoreURL
    let term: Int64
    let storeID: String
    private let configuration: PostgresConnection.Configuration
    private let timeout: TimeAmount
    private let logger: Logger
    private var connection: BlockingPostgresConnection?
    private var closed = false

    init(
        url: PostgresStoreURL,
        configuration: PostgresConnection.Configuration,
        connection: BlockingPostgresConnection,
        term: Int64,
        storeID: String,
        logger: Logger
    ) {
        self.url = url
        self.configuration = configuration
        self.connection = connection
        self.timeout = connection.timeout
        self.term = term
        self.storeID = storeID
        self.logger = logger
    }

    // MARK: LedgerJournal

    func load(now: Millis) throws -> JournalSnapshot {
        let contents = try readContents()
        return JournalSnapshot(ledger: contents.ledger(now: now), generation: contents.generation)
    }

    func commit(_ batch: JournalBatch) throws -> Int64 {
        var columns = ChangeColumns(capacity: batch.changeCount)
        batch.forEachChange { columns.append($0) }
        let connection = try connected()
        return try connection.transaction {
            try PostgresLeaseStore.commit(columns, term: term, on: connection)
        }
    }

    func backup(to path: String) throws -> Int64 {
        let contents = try readContents()
        try SQLiteLeaseStore.writeFile(contents, to: path)
        try SQLiteLeaseStore.addHostCredentials(try readHostCredentials(), toFile: path)
        return contents.generation
    }

    func storageError(_ error: Error, doing what: String) -> NetleaseError {
        PostgresLeaseStore.storageError(error, doing: what)
    }

    func close() {
        closed = true
        connection?.close()
        connection = nil
    }

    // MARK: reading

    /// Every row, from one snapshot, after checking that this journal's term still leads.
    func readContents() throws -> StoreContents {
        let connection = try connected()
        return try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
            try PostgresLeaseStore.checkTerm(term, on: connection)
            return try PostgresLeaseStore.readContents(on: connection)
        }
    }

    /// The open connection, reconnecting (and re-checking the durability settings) when it was lost.
    func connected() throws -> BlockingPostgresConnection {
        guard !closed else { throw NetleaseError(.storage, "the store is closed") }
        if let connection, !connection.isClosed { return connection }
        connection = nil
        logger.notice("reconnecting to the database", metadata: ["store": "\(url)"])
        let fresh = try PostgresLeaseStore.connectDurable(configuration, url: url, timeout: timeout, logger: logger)
        connection = fresh
        return fresh
    }
}
