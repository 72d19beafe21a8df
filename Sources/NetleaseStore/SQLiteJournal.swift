import Foundation
import NetleaseCore

/// The SQLite side of a `GroupCommitStore`: one connection to the store file, used by the store's writer queue only.
/// A batch is one `BEGIN IMMEDIATE … COMMIT` with `synchronous=FULL`, so it is durable when `commit` returns.
final class SQLiteJournal: LedgerJournal {
    let database: SQLiteDatabase
    let storeID: String
    /// The file's generation, read at every load and counted up by every commit (no extra read per commit).
    private var generation: Int64 = 0

    init(database: SQLiteDatabase, storeID: String) {
        self.database = database
        self.storeID = storeID
    }

    func load(now: Millis) throws -> JournalSnapshot {
        let networks = try Schema.networks(database)
        let prefixes = Dictionary(uniqueKeysWithValues: networks.map { ($0.name, $0.subnet.prefix) })
        let lastEpoch = Int64(try database.scalarText("SELECT value FROM meta WHERE key = 'last-epoch'") ?? "0") ?? 0
        let ledger = Ledger(
            networks: networks,
            hosts: try Schema.hosts(database),
            leases: try Schema.leases(database, prefixes: prefixes),
            lastEpoch: lastEpoch,
            now: now
        )
        generation = try Schema.generation(database)
        return JournalSnapshot(ledger: ledger, generation: generation)
    }

    func commit(_ batch: JournalBatch) throws -> Int64 {
        try database.transaction {
            try batch.forEachChange { try Schema.write($0, to: database) }
            try Schema.bumpGeneration(database)
        }
        generation += 1
        return generation
    }

    func backup(to path: String) throws -> Int64 {
        try database.backup(to: path)
        return try Schema.generation(database)
    }

    func storageError(_ error: Error, doing what: String) -> NetleaseError {
        SQLiteLeaseStore.storageError(error, doing: what)
    }

    func close() {
        database.close()
    }
}
