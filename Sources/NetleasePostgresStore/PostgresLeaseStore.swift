import Dispatch
import Foundation
import Logging
import NIOCore
import NIOSSL
import NetleaseCore
import NetleaseStore
import PostgresNIO

/// The lease store on PostgreSQL, for several coordinators on one database: the same group-commit design as the
/// SQLite store (`GroupCommitStore`: the ledger in memory, each batch one PostgreSQL transaction, acknowledged only
/// after `COMMIT` returned), with every batch fenced by the leadership term this store took when it opened.
///
/// Design notes:
/// - Opening takes the next term (`UPDATE leadership SET term = term + 1`) and loads the state in the same
///   transaction. The update waits for a batch of the previous holder that is already committing, so the load sees
///   it; every later batch of the previous holder fails the term check. Opening a store is therefore taking over
///   the database: a store object that is still open on it stops being able to commit.
/// - Durability is PostgreSQL's: the store refuses a server with `fsync` or `synchronous_commit` off, since a
///   commit that returned could then still be lost.
/// - Schema guarantees are the SQLite store's (see `PostgresSchema`), the database's keys being the last guard.
public final class PostgresLeaseStore: GroupCommitBacked {
    public let core: GroupCommitStore
    public let url: PostgresStoreURL
    /// The leadership term this store commits under.
    public let term: Int64
    public var storeID: String { core.storeID }
    public var backend: StoreBackend { .postgres }

    /// Statements that take longer fail (their connection is closed).
    public static let defaultTimeout: Duration = .seconds(10)

    /// Whose turn it is to take the database.
    public enum Takeover: Sendable, Equatable {
        /// Take the next term whatever the current one (a single coordinator; tests).
        case unconditional
        /// Take the next term only if the leadership row still shows this term and beat: a standby that saw the
        /// leader stop renewing, racing other standbys.
        case ifUnchanged(term: Int64, beat: Int64)
    }

    private init(core: GroupCommitStore, url: PostgresStoreURL, term: Int64) {
        self.core = core
        self.url = url
        self.term = term
    }

    /// Connects, checks the server's durability settings, creates or migrates the schema, takes the next term
    /// (as `takeover` allows, recording `leader` as the address clients should use) and loads the state.
    /// - Throws: `not-leader` when `takeover` lost the race; `storage` for everything else.
    public static func open(
        url: PostgresStoreURL,
        leader: String = "",
        takeover: Takeover = .unconditional,
        clock: LeaseClock = SystemLeaseClock(),
        maxBatch: Int = GroupCommitStore.defaultMaxBatch,
        timeout: Duration = PostgresLeaseStore.defaultTimeout,
        logger: Logger = Logger(label: "netlease.store")
    ) async throws -> PostgresLeaseStore {
        try await onPlainThread {
            let configuration = try connectionConfiguration(url)
            let connection = try wrap(doing: "connect to \(url)") {
                try connectDurable(configuration, url: url, timeout: TimeAmount(timeout), logger: logger)
            }
            do {
                try wrap(doing: "prepare the schema in \(url)") { try migrate(on: connection, url: url) }
                let (term, contents) = try wrap(doing: "take over \(url)") {
                    try connection.transaction {
                        let term = try take(takeover, leader: leader, on: connection)
                        return (term, try readContents(on: connection))
                    }
                }
                let journal = PostgresJournal(
                    url: url,
                    configuration: configuration,
                    connection: connection,
                    term: term,
                    storeID: contents.storeID,
                    logger: logger
                )
                // A new term: cooldown ends were set by the previous leader's clock, which need not agree.
                let snapshot = JournalSnapshot(
                    ledger: contents.ledger(now: clock.now(), restartingCooldowns: true),
                    generation: contents.generation
                )
                let core = GroupCommitStore(
                    journal: journal,
                    snapshot: snapshot,
                    clock: clock,
                    maxBatch: maxBatch,
                    label: "netlease.store.writer",
                    logger: logger
                )
                return PostgresLeaseStore(core: core, url: url, term: term)
            } catch {
                connection.close()
                throw error
            }
        }
    }

    // MARK: text PostgreSQL cannot hold

    // PostgreSQL's text refuses NUL. A batch holding one would fail as a whole, failing every other request that
    // shares its commit; so free-text fields are checked here, before they reach the ledger. (Names are checked by
    // the ledger's own rules.)

    public func submit(_ operation: StoreOperation) {
        if let error = Self.refuseNUL(operation.freeText) { return operation.fail(error) }
        core.submit(operation)
    }

    static func refuseNUL(_ fields: KeyValuePairs<String, String>) -> NetleaseError? {
        for (name, value) in fields where value.utf8.contains(0) {
            return NetleaseError.badRequest("\(name) must not contain NUL")
        }
        return nil
    }

    // MARK: connecting

    /// PostgresNIO's configuration for `url`: TLS as `sslmode` asks.
    static func connectionConfiguration(_ url: PostgresStoreURL) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        if url.sslMode == .disable {
            tls = .disable
        } else {
            var settings = TLSConfiguration.makeClientConfiguration()
            switch url.sslMode {
            case .disable, .prefer, .require:
                // libpq's meaning: encrypt, but do not check who answers.
                settings.certificateVerification = .none
            case .verifyCA:
                settings.certificateVerification = .noHostnameVerification
            case .verifyFull:
                settings.certificateVerification = .fullVerification
            }
            if let root = url.sslRootCertificate { settings.trustRoots = .file(root) }
            let context: NIOSSLContext
            do {
                context = try NIOSSLContext(configuration: settings)
            } catch {
                throw NetleaseError(.storage, "cannot set up TLS for \(url): \(error)")
            }
            tls = url.sslMode == .prefer ? .prefer(context) : .require(context)
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host,
            port: url.port,
            username: url.user,
            password: url.password,
            database: url.database,
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.additionalStartupParameters = [
            ("application_name", "netlease"),
            // A coordinator stalled inside a transaction (stopped, starved) would hold the leadership row's lock
            // and keep a standby from taking over; the server ends such a transaction (and its session) instead.
            // A live coordinator never idles inside one: a batch is BEGIN, one call, COMMIT, back to back.
            ("idle_in_transaction_session_timeout", String(idleInTransactionTimeout.components.seconds * 1000)),
        ]
        return configuration
    }

    /// How long the server lets a session of ours sit idle inside a transaction before ending it.
    static let idleInTransactionTimeout: Duration = .seconds(3)

    /// Connects with `configuration` and checks the server's durability settings (`checkDurability`); closes the
    /// connection again when they are refused.
    static func connectDurable(
        _ configuration: PostgresConnection.Configuration,
        url: PostgresStoreURL,
        timeout: TimeAmount,
        logger: Logger
    ) throws -> BlockingPostgresConnection {
        let connection = try BlockingPostgresConnection.connect(configuration, timeout: timeout, logger: logger)
        do {
            try checkDurability(on: connection, url: url)
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Refuses a server on which a returned COMMIT could still be lost.
    static func checkDurability(on connection: BlockingPostgresConnection, url: PostgresStoreURL) throws {
        let (fsync, synchronousCommit) = try wrap(doing: "read the durability settings of \(url)") {
            (
                try connection.scalar("SHOW fsync", as: String.self) ?? "",
                try connection.scalar("SHOW synchronous_commit", as: String.self) ?? ""
            )
        }
        guard fsync != "off" else {
            throw NetleaseError(
                .storage,
                "PostgreSQL at \(url.host):\(url.port) runs with fsync=off: a committed lease could be lost "
                    + "in a crash; refusing to start. Set fsync = on in postgresql.conf (or ALTER SYSTEM SET fsync = "
                    + "on) and reload the server"
            )
        }
        guard synchronousCommit != "off" else {
            throw NetleaseError(
                .storage,
                "PostgreSQL runs with synchronous_commit=off for \(url.database): an acknowledged lease "
                    + "could be lost in a crash; refusing to start. Set synchronous_commit = on (postgresql.conf, or "
                    + "ALTER DATABASE \(url.database) SET synchronous_commit = on / ALTER ROLE \(url.user) SET "
                    + "synchronous_commit = on, whichever turned it off)"
            )
        }
    }

    // MARK: schema

    /// Creates the schema in an empty database or brings an older one up to date, under an advisory lock so that
    /// coordinators starting together do it once. Refuses a database of another application and a newer schema.
    static func migrate(on connection: BlockingPostgresConnection, url: PostgresStoreURL) throws {
        try connection.transaction {
            try connection.run("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))")
            let ours =
                try connection.scalar(
                    "SELECT to_regclass('netlease_schema') IS NOT NULL",
                    as: Bool.self
                ) ?? false
            var version = 0
            if ours {
                version = try connection.scalar("SELECT version FROM netlease_schema", as: Int.self) ?? 0
            } else {
                let foreign = try connection.run(
                    """
                    SELECT table_name FROM information_schema.tables
                    WHERE table_schema = current_schema() ORDER BY table_name LIMIT 5
                    """
                ).rows.map { try $0.decode(String.self) }
                guard foreign.isEmpty else {
                    throw NetleaseError(
                        .storage,
                        "database \(url.database) holds tables of another application "
                            + "(\(foreign.joined(separator: ", "))); refusing to use it. Give netlease an empty "
                            + "database of its own"
                    )
                }
            }
            let latest = PostgresSchema.migrations.count
            guard version <= latest else {
                throw NetleaseError(
                    .storage,
                    "database \(url.database) has netlease schema version \(version), newer than this "
                        + "netlease (\(latest)); upgrade netlease"
                )
            }
            guard version < latest else { return }
            for index in version..<latest {
                for statement in PostgresSchema.migrations[index] {
                    try connection.run(PostgresQuery(unsafeSQL: statement))
                }
            }
            if version == 0 {
                let id = UUID().uuidString.lowercased()
                try connection.run(
                    "INSERT INTO store_state (id, store_id, generation, last_epoch) VALUES (1, \(id), 0, 0)"
                )
            }
            try connection.run("UPDATE netlease_schema SET version = \(latest)")
        }
    }

    // MARK: leadership

    /// Takes the next term inside the caller's transaction; returns it.
    static func take(_ takeover: Takeover, leader: String, on connection: BlockingPostgresConnection) throws -> Int64 {
        let taken: Int64?
        switch takeover {
        case .unconditional:
            taken = try connection.scalar(
                """
                UPDATE leadership SET term = term + 1, leader = \(leader), beat = 0, changed = now()
                WHERE id = 1 RETURNING term
                """,
                as: Int64.self
            )
        case .ifUnchanged(let term, let beat):
            taken = try connection.scalar(
                """
                UPDATE leadership SET term = term + 1, leader = \(leader), beat = 0, changed = now()
                WHERE id = 1 AND term = \(term) AND beat = \(beat) RETURNING term
                """,
                as: Int64.self
            )
        }
        guard let taken else {
            let current = try connection.run("SELECT term, leader FROM leadership WHERE id = 1").rows.first?
                .decode((Int64, String).self)
            throw NetleaseError(
                .notLeader,
                "leader=\(current?.1 ?? "") another coordinator took the database first (term "
                    + "\(current?.0 ?? 0))"
            )
        }
        return taken
    }

    /// Throws `not-leader` when `term` no longer leads the database.
    static func checkTerm(_ term: Int64, on connection: BlockingPostgresConnection) throws {
        let current = try connection.run("SELECT term, leader FROM leadership WHERE id = 1").rows.first?
            .decode((Int64, String).self)
        guard let current, current.0 == term else {
            throw deposed(term: term, current: current?.0 ?? 0, leader: current?.1 ?? "")
        }
    }

    static func deposed(term: Int64, current: Int64, leader: String = "") -> NetleaseError {
        NetleaseError(
            .notLeader,
            "leader=\(leader) this coordinator's term \(term) was ended by a newer one (\(current))"
        )
    }

    // MARK: rows

    /// Every row of the store (inside the caller's transaction for a consistent view).
    static func readContents(on connection: BlockingPostgresConnection) throws -> StoreContents {
        guard
            let state = try connection.run(
                "SELECT store_id, generation, last_epoch FROM store_state WHERE id = 1"
            ).rows.first?.decode((String, Int64, Int64).self)
        else {
            throw NetleaseError(.storage, "the database has no store_state row; it was not made by netlease")
        }
        let networks = try connection.run(
            """
            SELECT name, subnet, tunnel, vni, bridge, mtu, lease_ttl, cooldown, excluded, created
            FROM networks ORDER BY name
            """
        ).rows.map { row -> NetworkSpec in
            let (name, subnetText, tunnelText, vni, bridge, mtu, ttl, cooldown, excludedText, created) =
                try row.decode((String, String, String, Int64, String, Int32, Int32, Int32, String, Int64).self)
            guard let subnet = IPv4Subnet(subnetText), let tunnel = TunnelKind(rawValue: tunnelText) else {
                throw NetleaseError(.storage, "stored network '\(name)' is unreadable")
            }
            let excluded = try excludedText.split(separator: ",").map { text -> IPv4Range in
                guard let range = IPv4Range(text) else {
                    throw NetleaseError(.storage, "stored network '\(name)' has unreadable exclusion '\(text)'")
                }
                return range
            }
            return NetworkSpec(
                name: name,
                subnet: subnet,
                tunnel: tunnel,
                vni: UInt32(truncatingIfNeeded: vni),
                bridge: bridge,
                mtu: Int(mtu),
                leaseTTL: Int(ttl),
                cooldown: Int(cooldown),
                excluded: excluded,
                created: created
            )
        }
        let hosts = try connection.run(
            "SELECT name, underlay, epoch, state, networks, joined, last_heartbeat FROM hosts ORDER BY name"
        ).rows.map { row -> HostRecord in
            let (name, underlayText, epoch, stateText, networkList, joined, heartbeat) =
                try row.decode((String, String, Int64, String, String, Int64, Int64).self)
            guard let underlay = IPv4Address(underlayText), let hostState = HostState(rawValue: stateText) else {
                throw NetleaseError(.storage, "stored host '\(name)' is unreadable")
            }
            return HostRecord(
                name: name,
                underlay: underlay,
                epoch: epoch,
                state: hostState,
                networks: networkList.split(separator: ",").map(String.init),
                joined: joined,
                lastHeartbeat: heartbeat
            )
        }
        let prefixes = Dictionary(uniqueKeysWithValues: networks.map { ($0.name, $0.subnet.prefix) })
        let leases = try connection.run(
            """
            SELECT network, address, state, host, owner, ifname, note, mac, static, created, renewed, until
            FROM leases ORDER BY network, address
            """
        ).rows.map { row -> Lease in
            let (network, address, stateText, host, owner, ifname, note, mac, isStatic, created, renewed, until) =
                try row.decode(
                    (String, Int64, String, String, String, String, String, String, Bool, Int64, Int64, Int64).self
                )
            guard let prefix = prefixes[network], let leaseState = LeaseState(rawValue: stateText) else {
                throw NetleaseError(.storage, "stored lease in '\(network)' is unreadable")
            }
            return Lease(
                network: network,
                address: IPv4Address(UInt32(truncatingIfNeeded: address)),
                prefix: prefix,
                state: leaseState,
                host: host,
                owner: owner,
                ifname: ifname,
                note: note,
                mac: mac,
                isStatic: isStatic,
                created: created,
                renewed: renewed,
                until: until
            )
        }
        return StoreContents(
            storeID: state.0,
            generation: state.1,
            lastEpoch: state.2,
            networks: networks,
            hosts: hosts,
            leases: leases
        )
    }

    /// Applies one batch with `netlease_commit` inside the caller's transaction; returns the new generation.
    static func commit(
        _ columns: ChangeColumns,
        term: Int64,
        on connection: BlockingPostgresConnection
    ) throws
        -> Int64
    {
        var binds = PostgresBindings(capacity: 14)
        binds.append(term)
        binds.append(columns.kinds)
        for text in columns.texts { binds.append(text) }
        for number in columns.numbers { binds.append(number) }
        guard
            let generation = try connection.scalar(
                PostgresQuery(unsafeSQL: PostgresSchema.commitSQL, binds: binds),
                as: Int64.self
            )
        else {
            throw NetleaseError(.storage, "netlease_commit returned no generation")
        }
        return generation
    }

    // MARK: errors

    static func wrap<T>(doing what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            throw storageError(error, doing: what)
        }
    }

    /// The error operators see: the server's SQLSTATE and message (PSQLError's own description hides them).
    static func storageError(_ error: Error, doing what: String) -> NetleaseError {
        if let error = error as? NetleaseError { return error }
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? ""
            let cause = "\(error.code) \(state) \(message)"
            switch state {
            case PostgresSchema.deposedState:
                return NetleaseError(.notLeader, "leader= this coordinator's term ended: \(message)", cause: cause)
            case PostgresError.Code.uniqueViolation.raw:
                return NetleaseError(
                    .storage,
                    "cannot \(what): a uniqueness guard refused the change",
                    cause: cause
                )
            case PostgresError.Code.characterNotInRepertoire.raw, PostgresError.Code.untranslatableCharacter.raw:
                return NetleaseError(
                    .storage,
                    "cannot \(what): a value cannot be stored as PostgreSQL text (\(message))",
                    cause: cause
                )
            case "":
                if [.connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown]
                    .contains(error.code)
                {
                    return NetleaseError(.storage, "cannot \(what): the database connection failed", cause: cause)
                }
                return NetleaseError(.storage, "cannot \(what): \(error.code)", cause: cause)
            default:
                return NetleaseError(.storage, "cannot \(what): \(message) (SQLSTATE \(state))", cause: cause)
            }
        }
        return NetleaseError(.storage, "cannot \(what): \(error)")
    }

    /// Runs blocking work on a dispatch thread, never on the cooperative pool (see `BlockingPostgresConnection`).
    static func onPlainThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }
}
