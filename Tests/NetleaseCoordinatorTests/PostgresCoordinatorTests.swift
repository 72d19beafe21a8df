import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Shared by the tests that run the real `netlease` executable on a PostgreSQL store: the test process's
/// PostgreSQL server (skipped without one, unless NETLEASE_REQUIRE_NETNS=1), databases, data directories and child
/// coordinators, all removed after each test.
class PostgresCoordinatorTestCase: XCTestCase {
    private(set) var server: PostgresTestServer!
    private var databases: [String] = []
    private var directories: [String] = []
    private var children: [CoordinatorProcess] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        server = try PostgresTestServer.sharedForTest(fail: { XCTFail($0) }, skip: { XCTSkip($0) })
    }

    override func tearDownWithError() throws {
        for child in children { child.cleanUp() }
        for database in databases { server?.dropDatabase(database) }
        for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
        try super.tearDownWithError()
    }

    /// A new database's URL.
    func makeDatabase() throws -> String {
        let name = try server.makeDatabase(prefix: "c")
        databases.append(name)
        return server.url(database: name)
    }

    func sql(_ statement: String, in url: String) throws -> String {
        try server.sql(statement, database: String(url.split(separator: "/").last!))
    }

    func makeDirectory() -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-pgc-\(UUID().uuidString)").path
        directories.append(path)
        return path
    }

    func start(_ directory: String, _ arguments: [String] = []) async throws -> CoordinatorProcess {
        let child = try await CoordinatorProcess.start(directory: directory, arguments: arguments)
        children.append(child)
        return child
    }

    /// Runs `netlease ARGUMENTS` to completion: exit status and what it printed.
    func netlease(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let output = try ChildProcess.run(
            executable: try CoordinatorProcess.binary(),
            arguments: arguments,
            timeout: .seconds(60)
        )
        return (
            output.termination.shellStatus, String(decoding: output.stdout, as: UTF8.self),
            String(decoding: output.stderr, as: UTF8.self)
        )
    }

    /// STATS of `endpoint` (answered by standbys too), authenticated with `secret`.
    func stats(_ endpoint: Endpoint, secret: String) async throws -> Fields {
        try await NetleaseConnection.connect(to: endpoint, secret: secret) { try await $0.stats() }
    }

    /// Waits until `endpoint` leads and serves; returns how long that took.
    @discardableResult
    func waitUntilLeading(
        _ endpoint: Endpoint,
        secret: String,
        within limit: Duration = .seconds(20),
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws -> Duration {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if let stats = try? await stats(endpoint, secret: secret), stats["role"] == "leader",
                stats["serving"] == "1"
            {
                return ContinuousClock.now - start
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("\(endpoint) did not lead within \(limit)", file: file, line: line)
        throw NetleaseError(.unavailable, "\(endpoint) did not lead")
    }
}

/// The real `netlease` executable on a PostgreSQL store: `coordinator --store postgres://…`, `migrate`, `stats`.
final class PostgresCoordinatorTests: PostgresCoordinatorTestCase {
    func testCoordinatorOnPostgresServesStatsAndLosesNothingAcknowledgedToKill9() async throws {
        let url = try makeDatabase()
        let directory = makeDirectory()
        let first = try await start(directory, ["--store", url])
        try await waitUntilLeading(first.endpoint, secret: try first.secret)
        var acknowledged: [String: IPv4Address] = [:]
        try await first.connect { connection in
            _ = try await connection.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/16")!))
            for index in 0..<50 {
                let lease = try await connection.acquire(AcquireRequest(network: "prod", owner: "c\(index)"))
                acknowledged[lease.owner] = lease.address
            }
            let stats = try await connection.stats()
            XCTAssertEqual(stats["store"], "postgres")
            XCTAssertEqual(stats["leases-active"], "50")
        }
        first.kill9()

        let second = try await start(directory, ["--store", url])
        // The killed leader never resigned: the restarted one takes over after the takeover timeout.
        try await waitUntilLeading(second.endpoint, secret: try second.secret)
        try await second.connect { connection in
            let leases = try await connection.leases(.init(network: "prod"))
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: leases.map { ($0.owner, $0.address) }), acknowledged)
        }
        let stats = try netlease([
            "stats", "--json", "--coordinator", "\(second.endpoint)", "--secret-file",
            directory + "/cluster-secret",
        ])
        XCTAssertEqual(stats.status, 0, stats.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["store"] as? String, "postgres", stats.stdout)
        XCTAssertEqual(object?["leases-active"] as? Int, 50, stats.stdout)
        XCTAssertEqual((object?["store-id"] as? String)?.count, 36, stats.stdout)
    }

    func testMigrateCopiesAStoppedSQLiteStoreAndRefusesWhatItMustNot() async throws {
        let credential = try HostCredential.generate(for: "h1")
        let directory = makeDirectory()
        let sqlite = try await start(directory)
        var before: [Lease] = []
        try await sqlite.connect { connection in
            _ = try await connection.createNetwork(
                NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, cooldown: 300)
            )
            let joined = try await connection.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1))
            let claim = HostClaim(host: "h1", epoch: joined.epoch)
            for index in 0..<10 {
                _ = try await connection.acquire(AcquireRequest(network: "prod", owner: "c\(index)", claim: claim))
            }
            _ = try await connection.release(ReleaseRequest(network: "prod", owner: "c4", claim: claim))
            _ = try await connection.reserve(network: "prod", address: IPv4Address(172, 30, 0, 200), note: "printer")
            before =
                try await connection.leases(.init(network: "prod"))
                + (try await connection.leases(.init(network: "prod", state: .cooldown)))
            try await connection.setHostCredential(host: "h1", hash: SecretHash(hashing: credential.text).stored)
        }
        let url = try makeDatabase()

        // Not while the coordinator runs: its store is held.
        let busy = try netlease(["migrate", "--from", directory, "--to", url])
        XCTAssertNotEqual(busy.status, 0)
        XCTAssertTrue(busy.stderr.contains("in use by another process"), busy.stderr)

        XCTAssertEqual(sqlite.stop(), 0)
        let fileBefore = try Data(contentsOf: URL(fileURLWithPath: directory + "/netlease.db"))
        let migrated = try netlease(["migrate", "--from", directory, "--to", url])
        XCTAssertEqual(migrated.status, 0, migrated.stderr)
        XCTAssertTrue(migrated.stdout.contains("1 networks, 1 hosts, 12 leases"), migrated.stdout)
        XCTAssertTrue(migrated.stdout.contains("verified"), migrated.stdout)
        XCTAssertTrue(migrated.stdout.contains("1 host credential(s)"), migrated.stdout)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: directory + "/netlease.db")),
            fileBefore,
            "the SQLite store was changed"
        )

        // Never into a database that holds rows.
        let again = try netlease(["migrate", "--from", directory, "--to", url])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("not empty"), again.stderr)
        let missing = try netlease(["migrate", "--from", makeDirectory(), "--to", try makeDatabase()])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("no SQLite store"), missing.stderr)

        let postgres = try await start(directory, ["--store", url])
        try await waitUntilLeading(postgres.endpoint, secret: try postgres.secret)
        try await postgres.connect { connection in
            let after =
                try await connection.leases(.init(network: "prod"))
                + (try await connection.leases(.init(network: "prod", state: .cooldown)))
            XCTAssertEqual(after.map(\.address), before.map(\.address))
            XCTAssertEqual(after.map(\.owner), before.map(\.owner))
            XCTAssertEqual(after.map(\.state), before.map(\.state))
            let hosts = try await connection.hosts()
            XCTAssertEqual(hosts.map(\.name), ["h1"])
            // The epoch counter came along: a rejoin gets a new, higher epoch.
            let rejoined = try await connection.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1))
            XCTAssertEqual(rejoined.epoch, hosts[0].epoch + 1)
        }
        // The host's credential came along: its agent authenticates as before.
        try await NetleaseConnection.connect(to: postgres.endpoint, secret: credential.text) { connection in
            _ = try await connection.heartbeat(host: "h1", epoch: try await connection.hosts()[0].epoch)
        }

        // Nor into a database a coordinator has already used, even an empty one.
        let used = try makeDatabase()
        let user = try await start(makeDirectory(), ["--store", used])
        try await waitUntilLeading(user.endpoint, secret: try user.secret)
        XCTAssertEqual(user.stop(), 0)
        let refused = try netlease(["migrate", "--from", directory, "--to", used])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("already used"), refused.stderr)
    }

    func testCoordinatorRefusesABadStoreURLBeforeStarting() async throws {
        let result = try netlease(["coordinator", "--data", makeDirectory(), "--store", "postgres://nohost"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("--store"), result.stderr)
        let password = try netlease(["coordinator", "--data", makeDirectory(), "--store", "postgres://u:pw@h/d"])
        XCTAssertNotEqual(password.status, 0)
        XCTAssertFalse(password.stderr.contains("pw@"), password.stderr)
    }
}
