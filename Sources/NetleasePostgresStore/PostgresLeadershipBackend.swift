import Dispatch
import Foundation
import Logging
import NIOCore
import NetleaseCore
import NetleaseStore
import PostgresNIO

/// Leadership on a PostgreSQL database, for the coordinator's leadership loop: reads and renews the `leadership`
/// row on a connection of its own (a long batch on the store's connection never delays a renewal), and opens a
/// `PostgresLeaseStore` for each term taken. Also keeps the hashes of the cluster's secrets.
public final class PostgresLeadershipBackend: LeadershipBackend, @unchecked Sendable {
    // @unchecked: `connection` is touched only on `queue`; everything else is immutable.
    public let url: PostgresStoreURL
    private let configuration: PostgresConnection.Configuration
    private let queue = DispatchQueue(label: "netlease.leadership")
    private var connection: BlockingPostgresConnection?
    private let timeout: Duration
    private let storeTimeout: Duration
    private let clock: LeaseClock
    private let maxBatch: Int
    private let logger: Logger

    /// Secret roles kept as hashes.
    public static let adminRole = "admin"
    public static let readerRole = "reader"

    /// Connects, checks the server's durability settings and creates or migrates the schema.
    /// - Parameter timeout: longest wait for a leadership statement (keep it below the leader lease, so a leader
    ///   cut off from the database notices within its lease).
    public static func connect(
        url: PostgresStoreURL,
        clock: LeaseClock = SystemLeaseClock(),
        maxBatch: Int = GroupCommitStore.defaultMaxBatch,
        timeout: Duration = .seconds(2),
        storeTimeout: Duration = PostgresLeaseStore.defaultTimeout,
        logger: Logger = Logger(label: "netlease.leadership")
    ) async throws -> PostgresLeadershipBackend {
        let backend = try PostgresLeadershipBackend(
            url: url,
            clock: clock,
            maxBatch: maxBatch,
            timeout: timeout,
            storeTimeout: storeTimeout,
            logger: logger
        )
        try await backend.onQueue { connection in
            try PostgresLeaseStore.wrap(doing: "prepare the schema in \(url)") {
                try PostgresLeaseStore.migrate(on: connection, url: url)
            }
        }
        return backend
    }

    private init(
        url: PostgresStoreURL,
        clock: LeaseClock,
        maxBatch: Int,
        timeout: Duration,
        storeTimeout: Duration,
        logger: Logger
    ) throws {
        self.url = url
        configuration = try PostgresLeaseStore.connectionConfiguration(url)
        self.clock = clock
        self.maxBatch = maxBatch
        self.timeout = timeout
        self.storeTimeout = storeTimeout
        self.logger = logger
    }

    // MARK: LeadershipBackend

    public func observe() async throws -> LeadershipRecord {
        try await onQueue { connection in
            guard
                let (term, leader, beat) = try connection.run(
                    "SELECT term, leader, beat FROM leadership WHERE id = 1"
                ).rows.first?.decode((Int64, String, Int64).self)
            else {
                throw NetleaseError(.storage, "the database has no leadership row")
            }
            return LeadershipRecord(term: term, leader: leader, beat: beat)
        }
    }

    public func takeOver(
        from seen: LeadershipRecord?,
        leader: String
    ) async throws
        -> (store: any LeaseStore, term: Int64)
    {
        let takeover = seen.map { PostgresLeaseStore.Takeover.ifUnchanged(term: $0.term, beat: $0.beat) }
        let store = try await PostgresLeaseStore.open(
            url: url,
            leader: leader,
            takeover: takeover ?? .unconditional,
            clock: clock,
            maxBatch: maxBatch,
            timeout: storeTimeout,
            logger: Logger(label: "netlease.store")
        )
        return (store, store.term)
    }

    public func renew(term: Int64) async throws -> Bool {
        try await onQueue { connection in
            let result = try connection.run(
                "UPDATE leadership SET beat = beat + 1, changed = now() WHERE id = 1 AND term = \(term)"
            )
            return result.metadata.rows == 1
        }
    }

    public func resign(term: Int64) async throws {
        try await onQueue { connection in
            try connection.run(
                "UPDATE leadership SET leader = '', beat = beat + 1, changed = now() WHERE id = 1 AND term = \(term)"
            )
        }
    }

    public func close() async {
        _ = try? await onQueue(reconnect: false) { connection in connection.close() }
    }

    // MARK: secrets

    /// The stored hashes by role; empty before any coordinator initialised them.
    public func secretHashes() async throws -> [String: SecretHash] {
        try await onQueue { connection in try Self.readHashes(connection) }
    }

    /// Stores `hashes` unless some are stored already (another coordinator initialised the database first);
    /// returns what is stored afterwards.
    public func initialiseSecrets(_ hashes: [String: SecretHash]) async throws -> [String: SecretHash] {
        try await onQueue { connection in
            try connection.transaction {
                try connection.run("LOCK TABLE secrets IN EXCLUSIVE MODE")
                let stored = try Self.readHashes(connection)
                guard stored.isEmpty else { return stored }
                for (role, hash) in hashes {
                    try connection.run("INSERT INTO secrets (role, hash) VALUES (\(role), \(hash.stored))")
                }
                return hashes
            }
        }
    }

    private static func readHashes(_ connection: BlockingPostgresConnection) throws -> [String: SecretHash] {
        var hashes: [String: SecretHash] = [:]
        for row in try connection.run("SELECT role, hash FROM secrets").rows {
            let (role, text) = try row.decode((String, String).self)
            guard let hash = SecretHash(stored: text) else {
                throw NetleaseError(.storage, "the stored hash of the \(role) secret is unreadable")
            }
            hashes[role] = hash
        }
        return hashes
    }

    // MARK: the connection

    /// Runs `body` with the connection on the backend's queue (reconnecting when it was lost), never on the
    /// cooperative pool.
    private func onQueue<T: Sendable>(
        reconnect: Bool = true,
        _ body: @escaping @Sendable (BlockingPostgresConnection) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(
                    with: Result {
                        try PostgresLeaseStore.wrap(doing: "use the leadership connection to \(self.url)") {
                            guard let connection = try self.connected(reconnect: reconnect) else {
                                throw NetleaseError(.storage, "not connected")
                            }
                            return try body(connection)
                        }
                    }
                )
            }
        }
    }

    private func connected(reconnect: Bool) throws -> BlockingPostgresConnection? {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        guard reconnect else { return nil }
        let fresh = try PostgresLeaseStore.connectDurable(
            configuration,
            url: url,
            timeout: TimeAmount(timeout),
            logger: logger
        )
        connection = fresh
        return fresh
    }
}
