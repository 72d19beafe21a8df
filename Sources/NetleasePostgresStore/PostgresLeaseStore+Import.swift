import Foundation
import Logging
import NIOCore
import NetleaseCore
import NetleaseStore
import PostgresNIO

extension PostgresLeaseStore {
    /// Copies `contents` (a stopped store's rows) into the empty database at `url`, keeping the store id and
    /// generation, in one transaction; then reads everything back and compares. Returns what the database holds.
    ///
    /// Refuses a database that holds any network, host or lease, and one a coordinator has already led (its term is
    /// above 0): such a coordinator may be running, and it would not know the copied rows.
    public static func importContents(
        _ contents: StoreContents,
        into url: PostgresStoreURL,
        hostCredentials: [StoredHostCredential] = [],
        timeout: Duration = PostgresLeaseStore.defaultTimeout,
        logger: Logger = Logger(label: "netlease.migrate")
    ) async throws -> StoreContents {
        try await onPlainThread {
            let configuration = try connectionConfiguration(url)
            let connection = try wrap(doing: "connect to \(url)") {
                try connectDurable(configuration, url: url, timeout: TimeAmount(timeout), logger: logger)
            }
            defer { connection.close() }
            try wrap(doing: "prepare the schema in \(url)") { try migrate(on: connection, url: url) }
            try wrap(doing: "copy into \(url)") {
                try connection.transaction {
                    let term =
                        try connection.scalar(
                            "SELECT term FROM leadership WHERE id = 1 FOR UPDATE",
                            as: Int64.self
                        ) ?? 0
                    let rows =
                        try connection.scalar(
                            """
                            SELECT (SELECT count(*) FROM networks) + (SELECT count(*) FROM hosts)
                                + (SELECT count(*) FROM leases)
                            """,
                            as: Int64.self
                        ) ?? 0
                    guard rows == 0 else {
                        throw NetleaseError(
                            .conflict,
                            "database \(url.database) is not empty (\(rows) networks, hosts and leases); "
                                + "migrate only into a new, empty database"
                        )
                    }
                    guard term == 0 else {
                        throw NetleaseError(
                            .conflict,
                            "a coordinator has already used database \(url.database) (leadership term "
                                + "\(term)); migrate only into a new, empty database, before any coordinator starts"
                        )
                    }
                    var columns = ChangeColumns(capacity: contents.changes.count)
                    for change in contents.changes { columns.append(change) }
                    _ = try commit(columns, term: 0, on: connection)
                    try connection.run(
                        """
                        UPDATE store_state SET store_id = \(contents.storeID), generation = \(contents.generation),
                            last_epoch = \(contents.lastEpoch)
                        WHERE id = 1
                        """
                    )
                    try insertHostCredentials(hostCredentials, on: connection)
                }
            }
            let copied = try wrap(doing: "read back \(url)") {
                try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
                    try readContents(on: connection)
                }
            }
            guard copied.normalized == contents.normalized else {
                throw NetleaseError(
                    .storage,
                    "the copy in \(url.database) differs from the source (source: \(contents.summary); "
                        + "copy: \(copied.summary)); the database was left as it is for inspection"
                )
            }
            return copied
        }
    }
}

extension StoreContents {
    /// Rows in a fixed order, for comparing two stores' contents.
    var normalized: StoreContents {
        var copy = self
        copy.networks.sort { $0.name < $1.name }
        copy.hosts.sort { $0.name < $1.name }
        copy.leases.sort { ($0.network, $0.address) < ($1.network, $1.address) }
        return copy
    }
}
