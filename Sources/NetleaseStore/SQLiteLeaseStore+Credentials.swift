import NetleaseCore

/// Host credentials in the store's own file (table `host_credentials`), written by the store's writer between
/// group commits, each in its own durable transaction.
extension SQLiteLeaseStore: HostCredentialStore {
    public func hostCredential(_ host: String) async throws -> StoredHostCredential? {
        try await onDatabase { db in try Self.credentials(db, host: host).first }
    }

    public func storeHostCredential(_ credential: StoredHostCredential) async throws -> Bool {
        try await onDatabase { db in
            var replaced = false
            try db.transaction {
                replaced = try !Self.credentials(db, host: credential.host).isEmpty
                try db.run(
                    """
                    INSERT INTO host_credentials (host, hash, issued) VALUES (?, ?, ?)
                    ON CONFLICT (host) DO UPDATE SET hash = excluded.hash, issued = excluded.issued
                    """,
                    [.text(credential.host), .text(credential.hash.stored), .int(credential.issued)]
                )
            }
            return replaced
        }
    }

    public func revokeHostCredential(_ host: String) async throws -> Bool {
        try await onDatabase { db in
            var revoked = false
            try db.transaction {
                revoked = try !Self.credentials(db, host: host).isEmpty
                try db.run("DELETE FROM host_credentials WHERE host = ?", [.text(host)])
            }
            return revoked
        }
    }

    public func hostCredentials() async throws -> [StoredHostCredential] {
        try await onDatabase { db in try Self.credentials(db, host: nil) }
    }

    /// Adds `credentials` to a store file `writeFile` just made (a backup of another backend), in one transaction.
    public static func addHostCredentials(_ credentials: [StoredHostCredential], toFile path: String) throws {
        do {
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("PRAGMA synchronous=FULL")
            try database.transaction {
                for credential in credentials {
                    try database.run(
                        "INSERT INTO host_credentials (host, hash, issued) VALUES (?, ?, ?)",
                        [.text(credential.host), .text(credential.hash.stored), .int(credential.issued)]
                    )
                }
            }
        } catch {
            throw storageError(error, doing: "write the host credentials to \(path)")
        }
    }

    private static func credentials(_ db: SQLiteDatabase, host: String?) throws -> [StoredHostCredential] {
        let rows =
            try host.map { host in
                try db.query("SELECT host, hash, issued FROM host_credentials WHERE host = ?", [.text(host)]) {
                    (try $0.text(0), try $0.text(1), try $0.int(2))
                }
            }
            ?? db.query("SELECT host, hash, issued FROM host_credentials ORDER BY host") {
                (try $0.text(0), try $0.text(1), try $0.int(2))
            }
        return try rows.map { try StoredHostCredential.row(host: $0.0, hash: $0.1, issued: $0.2) }
    }

    private func onDatabase<T: Sendable>(_ body: @escaping @Sendable (SQLiteDatabase) throws -> T) async throws -> T {
        try await core.onWriter { journal in
            try Self.wrap { try body((journal as! SQLiteJournal).database) }
        }
    }
}
