import NetleaseCore
import NetleaseStore
import PostgresNIO

/// Host credentials in the shared database (table `host_credentials`), through this term's connection: every
/// coordinator on the database sees the same credentials, and only the leader of the term changes them — each
/// transaction holds the leadership row (`FOR SHARE`, as a batch commit does) and checks the term first, so a
/// deposed leader can neither issue nor revoke, and a new leader reads exactly what the old one committed.
extension PostgresLeaseStore: HostCredentialStore {
    public func hostCredential(_ host: String) async throws -> StoredHostCredential? {
        try await onConnection(doing: "read a host credential") { connection in
            try Self.credentials(connection, host: host).first
        }
    }

    public func storeHostCredential(_ credential: StoredHostCredential) async throws -> Bool {
        try await onConnection(doing: "store a host credential") { connection in
            let replaced = try !Self.credentials(connection, host: credential.host).isEmpty
            try connection.run(
                """
                INSERT INTO host_credentials (host, hash, issued)
                VALUES (\(credential.host), \(credential.hash.stored), \(credential.issued))
                ON CONFLICT (host) DO UPDATE SET hash = excluded.hash, issued = excluded.issued
                """
            )
            return replaced
        }
    }

    public func revokeHostCredential(_ host: String) async throws -> Bool {
        try await onConnection(doing: "revoke a host credential") { connection in
            try connection.run("DELETE FROM host_credentials WHERE host = \(host)").metadata.rows == 1
        }
    }

    public func hostCredentials() async throws -> [StoredHostCredential] {
        try await onConnection(doing: "list host credentials") { connection in
            try Self.credentials(connection, host: nil)
        }
    }

    /// Every stored credential, for a backup.
    static func hostCredentials(on connection: BlockingPostgresConnection) throws -> [StoredHostCredential] {
        try credentials(connection, host: nil)
    }

    /// Inserts `credentials` (a migrated store's) into an empty table, in the caller's transaction, and reads them
    /// back to compare; the hashes are copied as they are (the secrets are never known here), so every agent keeps
    /// working after a migration.
    static func insertHostCredentials(
        _ credentials: [StoredHostCredential],
        on connection: BlockingPostgresConnection
    ) throws {
        for credential in credentials {
            try connection.run(
                """
                INSERT INTO host_credentials (host, hash, issued)
                VALUES (\(credential.host), \(credential.hash.stored), \(credential.issued))
                """
            )
        }
        guard try self.credentials(connection, host: nil) == credentials.sorted(by: { $0.host < $1.host }) else {
            throw NetleaseError(.storage, "the copied host credentials differ from the source")
        }
    }

    private static func credentials(
        _ connection: BlockingPostgresConnection,
        host: String?
    ) throws
        -> [StoredHostCredential]
    {
        let result =
            try host.map { try connection.run("SELECT host, hash, issued FROM host_credentials WHERE host = \($0)") }
            ?? connection.run("SELECT host, hash, issued FROM host_credentials ORDER BY host")
        return try result.rows.map { row in
            let (host, hash, issued) = try row.decode((String, String, Int64).self)
            return try StoredHostCredential.row(host: host, hash: hash, issued: issued)
        }
    }

    /// One transaction on this term's connection, on the store's writer queue, after checking the term.
    private func onConnection<T: Sendable>(
        doing what: String,
        _ body: @escaping @Sendable (BlockingPostgresConnection) throws -> T
    ) async throws -> T {
        let term = self.term
        return try await core.onWriter { journal in
            try Self.wrap(doing: what) {
                let connection = try (journal as! PostgresJournal).connected()
                return try connection.transaction {
                    try connection.run("SELECT term FROM leadership WHERE id = 1 FOR SHARE")
                    try Self.checkTerm(term, on: connection)
                    return try body(connection)
                }
            }
        }
    }
}

extension PostgresJournal {
    /// Every stored credential, after checking that this journal's term still leads (for a backup).
    func readHostCredentials() throws -> [StoredHostCredential] {
        let connection = try connected()
        return try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
            try PostgresLeaseStore.checkTerm(term, on: connection)
            return try PostgresLeaseStore.hostCredentials(on: connection)
        }
    }
}
