import Foundation
import Logging
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import XCTest

@testable import NetleasePostgresStore

/// What only the PostgreSQL store has to prove: the server's durability settings, the schema's guards in the
/// database itself, fencing by term, text PostgreSQL cannot hold, a lost connection, and backups.
final class PostgresLeaseStoreTests: XCTestCase {
    private var database: PostgresTestDatabase!
    private var clock: ManualLeaseClock!
    private var opened: [PostgresLeaseStore] = []
    private var extraDirectories: [String] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        database = try PostgresTestDatabase()
        clock = ManualLeaseClock()
    }

    override func tearDownWithError() throws {
        for store in opened { store.close() }
        database?.drop()
        for directory in extraDirectories { try? FileManager.default.removeItem(atPath: directory) }
        try super.tearDownWithError()
    }

    private func open(leader: String = "test") async throws -> PostgresLeaseStore {
        let store = try await database.open(clock: clock, leader: leader)
        opened.append(store)
        return store
    }

    private func expectError<T>(
        _ code: ErrorCode,
        _ what: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () async throws -> T
    ) async -> NetleaseError? {
        do {
            let value = try await body()
            XCTFail("\(what): expected \(code.rawValue), got \(value)", file: file, line: line)
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("\(what): expected NetleaseError \(code.rawValue), got \(error)", file: file, line: line)
        }
        return nil
    }

    private func prod(_ store: PostgresLeaseStore) async throws {
        _ = try await store.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/16")!))
    }

    // MARK: durability settings

    func testRefusesSynchronousCommitOffNamingTheSetting() async throws {
        try database.sql("ALTER DATABASE \(database.name) SET synchronous_commit = off")
        let error = await expectError(.storage, "open with synchronous_commit=off") { try await open() }
        let message = error?.message ?? ""
        XCTAssertTrue(message.contains("synchronous_commit=off"), message)
        XCTAssertTrue(message.contains("synchronous_commit = on"), message)
        XCTAssertEqual(try database.sql("SELECT to_regclass('leases') IS NULL"), "t", "nothing was created")

        try database.sql("ALTER DATABASE \(database.name) SET synchronous_commit = local")
        let store = try await open()
        try await prod(store)
    }

    func testRefusesFsyncOffNamingTheSetting() async throws {
        // fsync is server-wide: a server of this test's own.
        let server = try PostgresTestServer.start()
        defer { server.stop() }
        try server.sql("ALTER SYSTEM SET fsync = off")
        try server.sql("SELECT pg_reload_conf()")
        let name = try server.makeDatabase()
        var fsync = ""
        for _ in 0..<50 where fsync != "off" {
            fsync = try server.sql("SHOW fsync", database: name)
            if fsync != "off" { usleep(100_000) }
        }
        XCTAssertEqual(fsync, "off")
        let url = try PostgresStoreURL(parsing: server.url(database: name))
        let error = await expectError(.storage, "open with fsync=off") {
            try await PostgresLeaseStore.open(url: url, clock: clock)
        }
        XCTAssertTrue(error?.message.contains("fsync=off") ?? false, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("fsync = on") ?? false, error?.message ?? "")
    }

    // MARK: schema

    func testSchemaRefusesDuplicateAddressAndDuplicateActiveOwnerAndShrinkingTerms() async throws {
        let store = try await open()
        try await prod(store)
        let lease = try await store.acquire(network: "prod", owner: "web", claim: nil, address: nil, ifname: "eth0")
        store.close()

        let columns = "network, address, state, host, owner, ifname, note, mac, static, created, renewed, until"
        XCTAssertThrowsError(
            try database.sql(
                "INSERT INTO leases (\(columns)) VALUES ('prod', \(lease.address.value), 'active', '', 'other', '', '', "
                    + "'', true, 0, 0, 0)"
            ),
            "a second record for one address"
        )
        XCTAssertThrowsError(
            try database.sql(
                "INSERT INTO leases (\(columns)) VALUES ('prod', \(lease.address.value + 1), 'active', '', 'web', '', '', "
                    + "'', true, 0, 0, 0)"
            ),
            "a second active lease of one owner"
        )
        try database.sql(
            "INSERT INTO leases (\(columns)) VALUES ('prod', \(lease.address.value + 1), 'cooldown', '', 'web', '', "
                + "'', '', true, 0, 0, 0)"
        )
        XCTAssertThrowsError(try database.sql("UPDATE leadership SET term = term - 1"), "a term that shrinks")
        XCTAssertThrowsError(try database.sql("INSERT INTO leadership (id, term, leader, beat) VALUES (2, 9, '', 0)"))
        XCTAssertThrowsError(try database.sql("UPDATE leases SET state = 'gone'"))
        XCTAssertEqual(try database.sql("SELECT version FROM netlease_schema"), String(PostgresSchema.migrations.count))
    }

    func testRefusesADatabaseOfAnotherApplicationWithoutChangingIt() async throws {
        try database.sql("CREATE TABLE invoices (id integer PRIMARY KEY)")
        let error = await expectError(.storage, "foreign database") { try await open() }
        XCTAssertTrue(error?.message.contains("another application") ?? false, error?.message ?? "")
        XCTAssertEqual(
            try database.sql(
                "SELECT string_agg(table_name, ',') FROM information_schema.tables "
                    + "WHERE table_schema = 'public'"
            ),
            "invoices"
        )
    }

    func testRefusesANewerSchemaWithoutChangingIt() async throws {
        let store = try await open()
        store.close()
        try database.sql("UPDATE netlease_schema SET version = 99")
        let error = await expectError(.storage, "newer schema") { try await open() }
        XCTAssertTrue(error?.message.contains("upgrade netlease") ?? false, error?.message ?? "")
        XCTAssertEqual(try database.sql("SELECT term FROM leadership"), "1", "no term was taken")
    }

    func testCoordinatorsStartingTogetherOnAnEmptyDatabaseCreateTheSchemaOnce() async throws {
        let clock = self.clock!
        let url = try database.url
        let stores = try await withThrowingTaskGroup(of: PostgresLeaseStore.self) { group in
            for index in 0..<4 {
                group.addTask { try await PostgresLeaseStore.open(url: url, leader: "c\(index)", clock: clock) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        opened += stores
        XCTAssertEqual(Set(stores.map(\.term)), [1, 2, 3, 4], "each took its own term")
        XCTAssertEqual(Set(stores.map(\.storeID)).count, 1)
        XCTAssertEqual(try database.sql("SELECT count(*) FROM store_state"), "1")
        // Only the last one to take the database may change it.
        let newest = stores.max { $0.term < $1.term }!
        try await prod(newest)
        for store in stores where store !== newest {
            await expectError(.notLeader, "term \(store.term)") { try await self.prod(store) }
        }
    }

    // MARK: fencing

    func testANewerStoreFencesTheOlderOneWhichNeverAcknowledgesAgain() async throws {
        let old = try await open(leader: "10.0.0.1:7420")
        try await prod(old)
        let kept = try await old.acquire(network: "prod", owner: "kept", claim: nil, address: nil, ifname: "")

        let new = try await open(leader: "10.0.0.2:7420")
        XCTAssertEqual(new.term, old.term + 1)
        let refused = await expectError(.notLeader, "acquire through the deposed store") {
            try await old.acquire(network: "prod", owner: "late", claim: nil, address: nil, ifname: "")
        }
        XCTAssertTrue(refused?.message.contains("leader=") ?? false, refused?.message ?? "")
        // A deposed store answers nothing afterwards, not even listings.
        await expectError(.notLeader, "listing through the deposed store") { try await old.leases(.init()) }

        let leases = try await new.leases(.init(network: "prod"))
        XCTAssertEqual(leases.map(\.owner), ["kept"])
        XCTAssertEqual(leases.first?.address, kept.address)
        XCTAssertEqual(try database.sql("SELECT leader FROM leadership"), "10.0.0.2:7420")
    }

    /// Many acquires in flight while another store takes over: every acknowledged lease is in the new store, every
    /// refused one is not, and no address is held twice.
    func testATakeoverUnderLoadLosesNothingAcknowledged() async throws {
        let old = try await open()
        try await prod(old)
        let url = try database.url
        let clock = self.clock!
        let outcome = try await withThrowingTaskGroup(of: ([String: IPv4Address], PostgresLeaseStore?).self) { group in
            for client in 0..<8 {
                group.addTask {
                    var acknowledged: [String: IPv4Address] = [:]
                    for index in 0..<400 {
                        do {
                            let lease = try await old.acquire(
                                network: "prod",
                                owner: "c\(client)-\(index)",
                                claim: nil,
                                address: nil,
                                ifname: ""
                            )
                            acknowledged[lease.owner] = lease.address
                        } catch let error as NetleaseError where error.code == .notLeader {
                            break
                        }
                    }
                    return (acknowledged, nil)
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(150))
                return ([:], try await PostgresLeaseStore.open(url: url, leader: "new", clock: clock))
            }
            var acknowledged: [String: IPv4Address] = [:]
            var new: PostgresLeaseStore?
            for try await (acks, store) in group {
                acknowledged.merge(acks) { first, _ in first }
                if let store { new = store }
            }
            return (acknowledged, new!)
        }
        let (acknowledged, new) = outcome
        opened.append(new)
        let stored = try await new.leases(.init(network: "prod"))
        let byOwner = Dictionary(uniqueKeysWithValues: stored.map { ($0.owner, $0.address) })
        for (owner, address) in acknowledged {
            XCTAssertEqual(byOwner[owner], address, "acknowledged lease of \(owner) lost")
        }
        XCTAssertEqual(Set(stored.map(\.address)).count, stored.count, "an address is held twice")
        XCTAssertEqual(try database.sql("SELECT count(*) FROM leases"), String(stored.count))
        XCTAssertGreaterThan(acknowledged.count, 0)
        print("takeover under load: \(acknowledged.count) acknowledged by the old store, \(stored.count) stored")
    }

    // MARK: text

    func testNULIsRefusedBeforeTheStoreAndAnEncodingErrorFailsOnlyItsBatch() async throws {
        let store = try await open()
        try await prod(store)
        await expectError(.badRequest, "owner with NUL") {
            try await store.acquire(network: "prod", owner: "a\0b", claim: nil, address: nil, ifname: "")
        }
        await expectError(.badRequest, "ifname with NUL") {
            try await store.acquire(network: "prod", owner: "ab", claim: nil, address: nil, ifname: "e\0")
        }
        await expectError(.badRequest, "note with NUL") {
            try await store.reserve(network: "prod", address: IPv4Address(172, 30, 9, 9), note: "x\0")
        }
        let before = try await store.acquire(network: "prod", owner: "before", claim: nil, address: nil, ifname: "")

        // Should a value PostgreSQL cannot hold reach the journal anyway, its batch fails as a whole with a clear
        // storage error, the ledger is rebuilt from the database, and the store goes on.
        let injected = await expectError(.storage, "a NUL reaching the database") {
            try await store.core.perform { _, now, changes in
                changes.append(
                    .insertNetwork(
                        NetworkSpec(
                            name: "bad\0name",
                            subnet: IPv4Subnet("10.9.0.0/24")!,
                            created: now
                        )
                    )
                )
            }
        }
        XCTAssertTrue(injected?.message.contains("PostgreSQL text") ?? false, injected?.message ?? "")
        let after = try await store.acquire(network: "prod", owner: "after", claim: nil, address: nil, ifname: "")
        let owners = try await store.leases(.init(network: "prod")).map(\.owner)
        XCTAssertEqual(Set(owners), ["before", "after"])
        XCTAssertNotEqual(before.address, after.address)
        let names = try await store.networks().map(\.spec.name)
        XCTAssertEqual(names, ["prod"])
        XCTAssertEqual(store.statistics().failedCommits, 1)
    }

    func testTextIsStoredByteForByte() async throws {
        let store = try await open()
        try await prod(store)
        let owner = "ctr-ü-日本-%41-\u{1F600}"
        let lease = try await store.acquire(network: "prod", owner: owner, claim: nil, address: nil, ifname: "eth0")
        _ = try await store.reserve(network: "prod", address: IPv4Address(172, 30, 1, 1), note: "rack 7 'a\"b'")
        store.close()
        XCTAssertEqual(try database.sql("SELECT owner FROM leases WHERE address = \(lease.address.value)"), owner)
        let reopened = try await open()
        let leases = try await reopened.leases(.init(network: "prod"))
        XCTAssertEqual(leases.first { $0.address == lease.address }?.owner, owner)
        let reserved = try await reopened.leases(.init(network: "prod", state: .reserved))
        XCTAssertEqual(reserved.first?.note, "rack 7 'a\"b'")
    }

    // MARK: the connection

    /// A coordinator stalled inside a transaction (stopped, starved) holds the leadership row's lock; the server
    /// ends such a transaction after a few seconds, so another coordinator can take over instead of waiting for
    /// ever. Here a connection with the store's settings locks the row like a batch does and goes quiet.
    func testATransactionLeftIdleDoesNotBlockATakeoverForLong() async throws {
        let store = try await open()
        try await prod(store)
        let url = try database.url
        let stalled = try await PostgresLeaseStore.onPlainThread {
            let connection = try BlockingPostgresConnection.connect(
                try PostgresLeaseStore.connectionConfiguration(url),
                timeout: .seconds(30),
                logger: Logger(label: "test")
            )
            try connection.run("BEGIN")
            try connection.run("SELECT term FROM leadership WHERE id = 1 FOR SHARE")
            return UncheckedBox(connection)
        }
        defer { stalled.value.close() }
        let started = ContinuousClock.now
        let next = try await open()
        let waited = ContinuousClock.now - started
        XCTAssertEqual(next.term, store.term + 1)
        XCTAssertGreaterThanOrEqual(waited, .seconds(2), "the takeover did not wait for the lock at all")
        XCTAssertLessThan(waited, .seconds(8), "the stalled transaction held the takeover for \(waited)")
        XCTAssertTrue(
            stalled.value.isClosed || (try? stalled.value.run("SELECT 1")) == nil,
            "the stalled session survived"
        )
    }

    func testALostConnectionFailsOnlyTheBatchInFlightAndTheStoreReconnects() async throws {
        let store = try await open()
        try await prod(store)
        let first = try await store.acquire(network: "prod", owner: "first", claim: nil, address: nil, ifname: "")
        let killed = try database.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                + "WHERE datname = '\(database.name)' AND application_name = 'netlease'"
        )
        XCTAssertEqual(killed, "1")
        // The first use after the kill finds the connection gone: that batch fails (or, if the loss was noticed
        // earlier, it reconnects at once); either way the next ones work.
        var acknowledged = ["first": first.address]
        var failures = 0
        for index in 0..<5 {
            do {
                let lease = try await store.acquire(
                    network: "prod",
                    owner: "n\(index)",
                    claim: nil,
                    address: nil,
                    ifname: ""
                )
                acknowledged[lease.owner] = lease.address
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .storage, error.description)
                failures += 1
            }
        }
        XCTAssertLessThanOrEqual(failures, 1)
        XCTAssertGreaterThanOrEqual(acknowledged.count, 5)
        store.close()
        let reopened = try await open()
        let stored = try await reopened.leases(.init(network: "prod"))
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: stored.map { ($0.owner, $0.address) }), acknowledged)
    }

    /// The database is unreachable for a while (here: connections refused): requests fail with `storage`, nothing
    /// is answered from a ledger that may hold unacknowledged changes, and once the database is back the store
    /// rebuilds its ledger and serves again without a restart.
    func testTheStoreServesAgainOnceTheDatabaseIsBack() async throws {
        let store = try await open()
        try await prod(store)
        let kept = try await store.acquire(network: "prod", owner: "kept", claim: nil, address: nil, ifname: "")
        try database.server.sql("ALTER DATABASE \(database.name) ALLOW_CONNECTIONS false")
        try database.server.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                + "WHERE datname = '\(database.name)' AND application_name = 'netlease'"
        )
        await expectError(.storage, "an acquire while the database is away") {
            try await store.acquire(network: "prod", owner: "lost", claim: nil, address: nil, ifname: "")
        }
        await expectError(.storage, "a listing while the ledger cannot be rebuilt") { try await store.leases(.init()) }

        try database.server.sql("ALTER DATABASE \(database.name) ALLOW_CONNECTIONS true")
        var served: [Lease]?
        let deadline = ContinuousClock.now + .seconds(20)
        while served == nil && ContinuousClock.now < deadline {
            served = try? await store.leases(.init(network: "prod"))
            if served == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        XCTAssertEqual(served?.map(\.owner), ["kept"], "the store did not serve again")
        XCTAssertEqual(served?.first?.address, kept.address)
        _ = try await store.acquire(network: "prod", owner: "after", claim: nil, address: nil, ifname: "")
        XCTAssertGreaterThanOrEqual(store.statistics().failedCommits, 1)
    }

    // MARK: backup

    func testBackupIsAnSQLiteStoreWithTheSameIdentityAndRows() async throws {
        let store = try await open()
        try await prod(store)
        let joined = try await store.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1), networks: ["prod"])
        for index in 0..<20 {
            _ = try await store.acquire(
                network: "prod",
                owner: "c\(index)",
                claim: HostClaim(host: "h1", epoch: joined.host.epoch),
                address: nil,
                ifname: ""
            )
        }
        _ = try await store.release(network: "prod", owner: "c3", address: nil, claim: nil)
        _ = try await store.reserve(network: "prod", address: IPv4Address(172, 30, 200, 1), note: "printer")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nl-pg-backup-\(UUID())").path
        extraDirectories.append(directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + SQLiteLeaseStore.fileName
        let identity = try await store.backup(to: path)
        XCTAssertEqual(identity, store.identity())
        do {
            _ = try await store.backup(to: path)
            XCTFail("a backup overwrote a file")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .conflict)
        }

        let copy = try SQLiteLeaseStore(directory: directory, clock: clock)
        defer { copy.close() }
        XCTAssertEqual(copy.identity(), identity)
        XCTAssertEqual(try copy.contents(), try store.core.withJournal { try ($0 as! PostgresJournal).readContents() })
        let hosts = try await copy.hosts()
        XCTAssertEqual(hosts.map(\.epoch), [joined.host.epoch])
    }
}

/// Hands a non-Sendable value out of a plain-thread closure; the test uses it from one task at a time.
final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
