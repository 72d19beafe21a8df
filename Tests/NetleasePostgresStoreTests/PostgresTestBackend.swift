import Foundation
import NetleaseCore
import NetleasePostgresStore
import NetleaseStore
import XCTest

@testable import NetleaseStoreTests

/// The contract suites' backend on PostgreSQL: one database per test; a "restart" is a new store object on it
/// (which takes the next leadership term); rows are read back with psql.
final class PostgresTestBackend: StoreTestBackend {
    /// Every store opened here takes a new term.
    var restartsCooldowns: Bool { true }

    let database: PostgresTestDatabase

    init() throws {
        database = try PostgresTestDatabase()
    }

    func makeStore(clock: LeaseClock) async throws -> any LeaseStore {
        try await database.open(clock: clock)
    }

    func storedLeases() throws -> [StoreTestCase.StoredLease] {
        try database.rows(
            "SELECT network, address, state, host, owner, static, until FROM leases ORDER BY network, address"
        ).map { row in
            StoreTestCase.StoredLease(
                network: row[0],
                address: IPv4Address(UInt32(row[1])!),
                state: row[2],
                host: row[3],
                owner: row[4],
                isStatic: row[5] == "t",
                until: Millis(row[6])!
            )
        }
    }

    func storedHosts() throws -> [StoreTestCase.StoredHost] {
        try database.rows("SELECT name, epoch, state FROM hosts ORDER BY name").map { row in
            StoreTestCase.StoredHost(name: row[0], epoch: Int64(row[1])!, state: row[2])
        }
    }

    func storedNetworkNames() throws -> [String] {
        try database.rows("SELECT name FROM networks ORDER BY name").map { $0[0] }
    }

    func tearDown() throws {
        database.drop()
    }
}
