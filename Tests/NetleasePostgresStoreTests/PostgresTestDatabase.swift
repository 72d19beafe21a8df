import Foundation
import NetleaseCore
import NetleasePostgresStore
import NetleaseTesting
import XCTest

/// A fresh database on the test process's PostgreSQL server (`PostgresTestServer.shared()`), dropped by `drop()`.
/// Without PostgreSQL the test is skipped, naming the package to install — unless NETLEASE_REQUIRE_NETNS=1, where a
/// missing PostgreSQL fails the test like any other missing capability of the root test run.
final class PostgresTestDatabase {
    let server: PostgresTestServer
    let name: String

    init(prefix: String = "t", file: StaticString = #filePath, line: UInt = #line) throws {
        server = try Self.server(file: file, line: line)
        name = try server.makeDatabase(prefix: prefix)
    }

    static func server(file: StaticString = #filePath, line: UInt = #line) throws -> PostgresTestServer {
        try PostgresTestServer.sharedForTest(fail: { XCTFail($0, file: file, line: line) }, skip: { XCTSkip($0) })
    }

    var urlText: String { server.url(database: name) }
    var url: PostgresStoreURL { get throws { try PostgresStoreURL(parsing: urlText) } }

    func open(clock: LeaseClock, leader: String = "test", maxBatch: Int = 4096) async throws -> PostgresLeaseStore {
        try await PostgresLeaseStore.open(url: try url, leader: leader, clock: clock, maxBatch: maxBatch)
    }

    @discardableResult
    func sql(_ statement: String) throws -> String { try server.sql(statement, database: name) }

    func rows(_ statement: String) throws -> [[String]] { try server.rows(statement, database: name) }

    func drop() { server.dropDatabase(name) }
}
