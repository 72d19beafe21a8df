import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NetleaseCore
import PostgresNIO
import Synchronization

/// One PostgreSQL connection driven synchronously, for the store's writer thread and for opening a store.
///
/// Design notes:
/// - Callers are plain threads (a dispatch queue), never Swift's cooperative pool: they block on PostgresNIO's
///   futures, and the connect (async only in PostgresNIO) runs as a task the caller waits for. Blocking a
///   cooperative thread this way could starve the very task it waits for, so `PostgresLeaseStore.open` hops to a
///   dispatch thread first.
/// - Every statement has a deadline (`timeout`): past it the connection is closed, which fails the statement, so a
///   database that stops answering fails the caller instead of hanging it.
final class BlockingPostgresConnection {
    let connection: PostgresConnection
    let timeout: TimeAmount
    private let logger: Logger

    var isClosed: Bool { connection.isClosed }

    private init(connection: PostgresConnection, timeout: TimeAmount, logger: Logger) {
        self.connection = connection
        self.timeout = timeout
        self.logger = logger
    }

    /// Connects and authenticates; blocks the calling (non-cooperative) thread.
    static func connect(
        _ configuration: PostgresConnection.Configuration,
        timeout: TimeAmount,
        logger: Logger
    )
        throws -> BlockingPostgresConnection
    {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        let promise = eventLoop.makePromise(of: PostgresConnection.self)
        let id = Int.random(in: 1...Int.max)
        promise.completeWithTask {
            try await PostgresConnection.connect(on: eventLoop, configuration: configuration, id: id, logger: logger)
        }
        return BlockingPostgresConnection(connection: try promise.futureResult.wait(), timeout: timeout, logger: logger)
    }

    /// Runs one statement and waits for all its rows, at most `timeout`: then the connection is closed and the
    /// statement fails. A closed connection fails at once.
    ///
    /// The wait is on a promise of our own, completed by whichever comes first — the statement's result or the
    /// deadline — because PostgresNIO never completes a statement written to a connection that was just closed.
    @discardableResult
    func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        let connection = self.connection
        guard !connection.isClosed else {
            throw NetleaseError(.storage, "the database connection is closed")
        }
        let eventLoop = connection.eventLoop
        let seconds = timeout.nanoseconds / 1_000_000_000
        let outcome = eventLoop.makePromise(of: PostgresQueryResult.self)
        // Both completions run on `eventLoop`; `settled` makes sure only the first counts.
        let settled = Flag()
        let deadline = eventLoop.scheduleTask(in: timeout) {
            guard !settled.value.exchange(true, ordering: .relaxed) else { return }
            outcome.fail(
                NetleaseError(
                    .storage,
                    "the database did not answer within \(seconds) s; "
                        + "connection closed"
                )
            )
            let closing: EventLoopFuture<Void> = connection.close()
            _ = closing
        }
        let result: EventLoopFuture<PostgresQueryResult> = connection.query(query, logger: logger)
        result.whenComplete { completion in
            guard !settled.value.exchange(true, ordering: .relaxed) else { return }
            deadline.cancel()
            outcome.completeWith(completion)
        }
        return try outcome.futureResult.wait()
    }

    /// The first column of the first row, decoded.
    func scalar<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type) throws -> T? {
        try run(query).rows.first?.decode(T.self)
    }

    /// `begin` (e.g. `BEGIN`), `body`, `COMMIT`; `ROLLBACK` when `body` throws. Returns after COMMIT came back.
    func transaction<T>(_ begin: String = "BEGIN", _ body: () throws -> T) throws -> T {
        try run(PostgresQuery(unsafeSQL: begin))
        let value: T
        do {
            value = try body()
        } catch {
            if !isClosed { _ = try? run("ROLLBACK") }
            throw error
        }
        try run("COMMIT")
        return value
    }

    func close() {
        _ = try? connection.close().wait()
    }
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
