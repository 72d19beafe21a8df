import Foundation
import NetleaseCore

extension SQLiteLeaseStore {
    /// Every row of the store, read between commits.
    public func contents() throws -> StoreContents {
        try core.withJournal { journal in
            let database = (journal as! SQLiteJournal).database
            return try Self.wrap {
                let networks = try Schema.networks(database)
                let prefixes = Dictionary(uniqueKeysWithValues: networks.map { ($0.name, $0.subnet.prefix) })
                let lastEpoch =
                    Int64(
                        try database.scalarText("SELECT value FROM meta WHERE key = 'last-epoch'") ?? "0"
                    ) ?? 0
                return StoreContents(
                    storeID: journal.storeID,
                    generation: try Schema.generation(database),
                    lastEpoch: lastEpoch,
                    networks: networks,
                    hosts: try Schema.hosts(database),
                    leases: try Schema.leases(database, prefixes: prefixes)
                )
            }
        }
    }

    /// Writes `contents` as an SQLite store file with the same store id and generation into `path`, the empty file
    /// a backup made for it (a backup of another backend that opens as a store anywhere; see `LedgerJournal.backup`).
    public static func writeFile(_ contents: StoreContents, to path: String) throws {
        do {
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("PRAGMA synchronous=FULL")
            try database.execute("PRAGMA foreign_keys=ON")
            try Schema.migrate(database)
            try database.transaction {
                for change in contents.changes { try Schema.write(change, to: database) }
                try database.run("UPDATE meta SET value = ? WHERE key = 'store-id'", [.text(contents.storeID)])
                try database.run(
                    "UPDATE meta SET value = ? WHERE key = 'generation'",
                    [.text(String(contents.generation))]
                )
            }
        } catch {
            throw storageError(error, doing: "write \(path)")
        }
    }
}
