import Foundation
import NetleaseCore
import NetleaseTesting
import XCTest

@testable import NetleaseStore

/// The SQLite file itself: durability settings, exclusive ownership, what survives a restart or a crash, and the
/// files the store refuses to open (without changing them).
final class StoreFileTests: StoreTestCase {
    // MARK: settings

    func testWriterConnectionRunsSynchronousFull() throws {
        let store = try openStore()
        XCTAssertEqual(try store.synchronousSetting(), 2, "PRAGMA synchronous must read back FULL (2)")
        let reopened = try reopen(store)
        XCTAssertEqual(try reopened.synchronousSetting(), 2, "synchronous=FULL after reopening an existing file")
    }

    func testFileIsInWALMode() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        _ = try await acquire(store, "blue", "c1")

        // Bytes 18 and 19 of the header are the read/write format versions: 2 means WAL.
        let header = try fileBytes(databasePath).prefix(20)
        XCTAssertEqual(Array(header.suffix(2)), [2, 2], "database header must mark the file as WAL")
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: databasePath + "-wal"),
            "a committed write of a WAL store lives in the -wal file until checkpoint"
        )

        store.close()
        // A second opinion from the sqlite3 shell, on a copy so that the shell leaves no files in the data dir.
        let copy = makeTemporaryDirectory()
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        let copyPath = copy.appendingPathComponent("copy.db").path
        try FileManager.default.copyItem(atPath: databasePath, toPath: copyPath)
        let mode = try sqlite3([copyPath, "PRAGMA journal_mode;"])
        XCTAssertEqual(mode, "wal")
    }

    func testSecondStoreOnSameDirectoryIsRefused() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        let first = try await acquire(store, "blue", "c1")

        let error = expectInitError(.storage) { try SQLiteLeaseStore(directory: directory.path, clock: clock) }
        XCTAssertTrue(
            error?.message.contains("another process") == true,
            "the refusal must say the file is held by another process: \(error.map(String.init(describing:)) ?? "")"
        )

        // The first store is unharmed and keeps serving.
        let again = try await acquire(store, "blue", "c1")
        XCTAssertEqual(again, first)
        let second = try await acquire(store, "blue", "c2")
        XCTAssertNotEqual(second.address, first.address)

        // Once it closes, the directory can be opened again and holds both leases.
        let reopened = try reopen(store)
        let owners = try await reopened.leases(.init(network: "blue")).map(\.owner)
        XCTAssertEqual(owners, ["c1", "c2"])
    }

    func testSchemaRefusesDuplicateAddressAndDuplicateActiveOwner() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        let lease = try await acquire(store, "blue", "c1")
        store.close()

        try withDatabase { db in
            let insert = """
                INSERT INTO leases (network, address, state, host, owner, ifname, note, mac, static, created,
                    renewed, until)
                VALUES (?, ?, ?, '', ?, '', '', '', 1, 0, 0, 0)
                """
            // A second record for the same address, even in another state and for another owner.
            XCTAssertThrowsError(
                try db.run(insert, [.text("blue"), .int(Int64(lease.address.value)), .text("reserved"), .text("x")])
            ) { error in
                XCTAssertTrue((error as? SQLiteError)?.isConstraint == true, "\(error)")
            }
            // A second active lease of the same owner at another address.
            XCTAssertThrowsError(
                try db.run(
                    insert,
                    [.text("blue"), .int(Int64(lease.address.value) + 1), .text("active"), .text("c1")]
                )
            ) { error in
                XCTAssertTrue((error as? SQLiteError)?.isConstraint == true, "\(error)")
            }
        }
        XCTAssertEqual(try storedLeases().count, 1)
    }

    // MARK: restart and crash

    func testRestartKeepsNetworksHostsAndLeasesOfEveryState() async throws {
        let store = try openStore()
        let blue = try await store.createNetwork(
            NetworkSpec(
                name: "blue",
                subnet: subnet("10.1.0.0/24"),
                tunnel: .gre,
                vni: 77,
                bridge: "br-blue",
                mtu: 1400,
                leaseTTL: 30,
                cooldown: 300,
                excluded: [IPv4Range("10.1.0.200-10.1.0.210")!]
            )
        )
        let green = try await createNetwork(store, "green", "10.2.0.0/24", leaseTTL: 60)

        // h1 joins twice (epoch 2); h2 joins blue and is later declared lost (epoch 1, state lost).
        _ = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue", "green"])
        let h1 = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue", "green"])
        XCTAssertEqual(h1.host.epoch, 2)
        let h2 = try await store.join(host: "h2", underlay: ip("192.168.0.2"), networks: ["blue"])
        let h1Claim = HostClaim(host: "h1", epoch: 2)
        let h2Claim = HostClaim(host: "h2", epoch: h2.host.epoch)

        _ = try await store.acquire(network: "blue", owner: "web", claim: h1Claim, address: nil, ifname: "eth0")
        _ = try await store.acquire(network: "green", owner: "db", claim: h1Claim, address: nil, ifname: "eth1")
        _ = try await store.acquire(network: "blue", owner: "h2-ctr", claim: h2Claim, address: nil, ifname: "eth0")
        _ = try await acquire(store, "blue", "gateway", at: ip("10.1.0.50"))
        _ = try await store.reserve(network: "blue", address: ip("10.1.0.60"), note: "printer")
        _ = try await store.reportConflict(
            network: "blue",
            address: ip("10.1.0.70"),
            mac: "aa:bb:cc:dd:ee:ff",
            claim: h1Claim
        )
        _ = try await acquire(store, "green", "gone")
        _ = try await store.release(network: "green", owner: "gone", address: nil, claim: nil)

        clock.advance(seconds: 31)
        _ = try await store.heartbeat(host: "h1", epoch: 2)
        let lost = try await store.reclaim()
        XCTAssertEqual(lost, ["h2"])

        let networks = try await store.networks()
        let hosts = try await store.hosts()
        var leases: [LeaseState: [Lease]] = [:]
        for state in LeaseState.allCases { leases[state] = try await store.leases(.init(state: state)) }
        let listed = try await store.leases(.init())

        // The fixture really holds every kind of record.
        XCTAssertEqual(networks.map(\.spec), [blue, green])
        XCTAssertEqual(hosts.map(\.state), [.up, .lost])
        XCTAssertEqual(leases[.active]?.map(\.owner).sorted(), ["bridge:h1", "bridge:h1", "db", "gateway", "web"])
        XCTAssertEqual(leases[.reserved]?.map(\.address), [ip("10.1.0.60")])
        XCTAssertEqual(leases[.conflict]?.map(\.mac), ["aa:bb:cc:dd:ee:ff"])
        XCTAssertEqual(leases[.cooldown]?.map(\.owner).sorted(), ["bridge:h2", "gone", "h2-ctr"])

        let restarted = try reopen(store)
        let networksAfter = try await restarted.networks()
        XCTAssertEqual(networksAfter, networks)
        let hostsAfter = try await restarted.hosts()
        XCTAssertEqual(hostsAfter, hosts)
        for state in LeaseState.allCases {
            let after = try await restarted.leases(.init(state: state))
            XCTAssertEqual(after, leases[state], "\(state) leases")
        }
        let listedAfter = try await restarted.leases(.init())
        XCTAssertEqual(listedAfter, listed)

        // Epochs survived: the current one works, older ones and the lost host's are fenced off.
        let beat = try await restarted.heartbeat(host: "h1", epoch: 2)
        XCTAssertEqual(beat.epoch, 2)
        await expectError(.staleEpoch, "h1 epoch 1") { try await restarted.heartbeat(host: "h1", epoch: 1) }
        await expectError(.staleEpoch, "lost h2") {
            try await restarted.heartbeat(host: "h2", epoch: h2.host.epoch)
        }
        let rejoined = try await restarted.join(host: "h2", underlay: ip("192.168.0.2"), networks: [])
        XCTAssertGreaterThan(rejoined.host.epoch, h2.host.epoch, "a rejoin after restart gets a new epoch")

        // Nothing already recorded is handed out again.
        let taken = Set(listed.map(\.address) + (leases[.cooldown] ?? []).map(\.address))
        let fresh = try await acquire(restarted, "blue", "new")
        XCTAssertFalse(taken.contains(fresh.address), "\(fresh.address) was already recorded")
    }

    func testUpHostGetsAFullTTLOfGraceAfterRestart() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24", leaseTTL: 10)
        let joined = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue"])
        let claim = HostClaim(host: "h1", epoch: joined.host.epoch)
        let lease = try await store.acquire(network: "blue", owner: "web", claim: claim, address: nil, ifname: "e")

        // The host's last heartbeat is 8 s old when the coordinator stops; it stays down far longer than the TTL.
        clock.advance(seconds: 8)
        store.close()
        clock.advance(seconds: 600)

        let restarted = try openStore()
        var lost = try await restarted.reclaim()
        XCTAssertEqual(lost, [], "downtime of the coordinator counts against no host")
        clock.advance(seconds: 9.5)
        lost = try await restarted.reclaim()
        XCTAssertEqual(lost, [], "less than a TTL since the restart")
        let states = try await restarted.hosts().map(\.state)
        XCTAssertEqual(states, [.up])
        let kept = try await restarted.leases(.init(owner: "web"))
        XCTAssertEqual(kept.map(\.address), [lease.address])
        XCTAssertEqual(kept.map(\.state), [.active])
        let beat = try await restarted.heartbeat(host: "h1", epoch: claim.epoch!)
        XCTAssertEqual(beat.state, .up)

        // Without heartbeats, a full TTL after the last one the host is lost as usual.
        clock.advance(seconds: 10.5)
        lost = try await restarted.reclaim()
        XCTAssertEqual(lost, ["h1"])
        let cooling = try await restarted.leases(.init(state: .cooldown)).map(\.owner).sorted()
        XCTAssertEqual(cooling, ["bridge:h1", "web"])
    }

    func testAcknowledgedChangesSurviveACrash() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/20", cooldown: 60)
        let acquired = try await withThrowingTaskGroup(of: Lease.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await store.acquire(
                        network: "blue",
                        owner: "c\(index)",
                        claim: nil,
                        address: nil,
                        ifname: "eth0"
                    )
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        var released: [Lease] = []
        for index in stride(from: 0, to: 200, by: 10) {
            if let lease = try await store.release(network: "blue", owner: "c\(index)", address: nil, claim: nil) {
                released.append(lease)
            }
        }
        XCTAssertEqual(released.count, 20)

        // kill -9 leaves exactly what is on disk: copy the database and its WAL while the store still runs.
        let snapshot = makeTemporaryDirectory()
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: databasePath + suffix) {
            try FileManager.default.copyItem(
                atPath: databasePath + suffix,
                toPath: snapshot.appendingPathComponent(SQLiteLeaseStore.fileName + suffix).path
            )
        }

        let recovered = try openStore(in: snapshot)
        let active = try await recovered.leases(.init(network: "blue", state: .active))
        let cooling = try await recovered.leases(.init(network: "blue", state: .cooldown))
        let releasedOwners = Set(released.map(\.owner))
        XCTAssertEqual(
            Dictionary(uniqueKeysWithValues: active.map { ($0.owner, $0.address) }),
            Dictionary(
                uniqueKeysWithValues: acquired.filter { !releasedOwners.contains($0.owner) }
                    .map { ($0.owner, $0.address) }
            )
        )
        XCTAssertEqual(Set(cooling.map(\.address)), Set(released.map(\.address)))
        XCTAssertEqual(Set(cooling.map(\.owner)), releasedOwners)
    }

    // MARK: files that are not ours

    func testRefusesAFileOfRandomBytesWithoutChangingIt() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var generator = ReplayableRandom(test: "random file")
        var bytes = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = 0xFF  // never "SQLite format 3"
        let original = Data(bytes)
        try original.write(to: URL(fileURLWithPath: databasePath))

        let error = expectInitError(.storage) { try SQLiteLeaseStore(directory: directory.path, clock: clock) }
        XCTAssertTrue(error?.message.contains("not an SQLite database") == true, "\(String(describing: error))")
        XCTAssertEqual(try fileBytes(databasePath), original, "the refused file must be left as it was")
        XCTAssertEqual(try directoryListing(directory), [SQLiteLeaseStore.fileName])
    }

    func testRefusesADatabaseOfAnotherApplicationWithoutChangingIt() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // The shell's default rollback journal, as most applications leave their files.
        try sqlite3([
            databasePath,
            "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT); "
                + "INSERT INTO photos (name) VALUES ('cat.jpg'), ('dog.jpg');",
        ])
        let listing = try directoryListing(directory)
        let original = try fileBytes(databasePath)

        let error = expectInitError(.storage) { try SQLiteLeaseStore(directory: directory.path, clock: clock) }
        XCTAssertTrue(error?.message.contains("another application") == true, "\(String(describing: error))")
        XCTAssertEqual(try fileBytes(databasePath), original, "the refused file must be left as it was")
        XCTAssertEqual(try directoryListing(directory), listing)
        let mode = try sqlite3([databasePath, "PRAGMA journal_mode;"])
        XCTAssertEqual(mode, "delete")
    }

    func testRefusesADatabaseOfAnotherApplicationInWALModeWithoutChangingIt() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try sqlite3([
            databasePath,
            "PRAGMA journal_mode=WAL; CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT); "
                + "INSERT INTO photos (name) VALUES ('cat.jpg'), ('dog.jpg');",
        ])
        let listing = try directoryListing(directory)
        let original = try fileBytes(databasePath)

        let error = expectInitError(.storage) { try SQLiteLeaseStore(directory: directory.path, clock: clock) }
        XCTAssertTrue(error?.message.contains("another application") == true, "\(String(describing: error))")
        XCTAssertEqual(try fileBytes(databasePath), original, "the refused file must be left as it was")
        XCTAssertEqual(try directoryListing(directory), listing)
        let photos = try sqlite3([databasePath, "SELECT count(*) FROM photos;"])
        XCTAssertEqual(photos, "2")
    }

    /// A store written before the leases table's state check became an OR chain (schema version 3) is rebuilt on
    /// open: every lease kept as it was, and the check and the one-active-owner index still refuse what they refused.
    func testAVersion3StoreIsRebuiltWithEveryLeaseAndItsConstraints() async throws {
        var store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24", cooldown: 600)
        for owner in ["c1", "c2", "c3"] { _ = try await acquire(store, "blue", owner) }
        _ = try await store.release(network: "blue", owner: "c2", address: nil, claim: nil)
        _ = try await store.reserve(network: "blue", address: ip("10.1.0.200"), note: "printer")
        store.close()
        // The leases table exactly as versions 1-3 created it, and the version those wrote.
        try sqlite3([
            databasePath,
            """
            CREATE TABLE leases_v1 (
                network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
                address INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('active', 'reserved', 'conflict', 'cooldown')),
                host TEXT NOT NULL, owner TEXT NOT NULL, ifname TEXT NOT NULL, note TEXT NOT NULL, mac TEXT NOT NULL,
                static INTEGER NOT NULL, created INTEGER NOT NULL, renewed INTEGER NOT NULL, until INTEGER NOT NULL,
                PRIMARY KEY (network, address)
            ) WITHOUT ROWID;
            INSERT INTO leases_v1 SELECT * FROM leases; DROP TABLE leases; ALTER TABLE leases_v1 RENAME TO leases;
            CREATE UNIQUE INDEX leases_active_owner ON leases (network, owner) WHERE state = 'active';
            PRAGMA user_version = 3;
            """,
        ])
        let rows =
            "SELECT network, address, state, host, owner, ifname, note, mac, static, created, renewed, until "
            + "FROM leases ORDER BY network, address;"
        let before = try sqlite3([databasePath, rows])
        XCTAssertEqual(before.split(separator: "\n").count, 4, before)
        let old = try sqlite3([databasePath, "SELECT sql FROM sqlite_master WHERE name = 'leases';"])
        XCTAssertTrue(old.contains("IN ("), old)

        store = try openStore()
        store.close()
        let version = try sqlite3([databasePath, "PRAGMA user_version;"])
        XCTAssertEqual(version, String(Schema.migrations.count))
        let definition = try sqlite3([databasePath, "SELECT sql FROM sqlite_master WHERE name = 'leases';"])
        XCTAssertFalse(definition.contains("IN ("), definition)
        XCTAssertTrue(definition.contains("state = 'cooldown'"), definition)
        let after = try sqlite3([databasePath, rows])
        XCTAssertEqual(after, before, "the rebuild changed a lease")
        let indexes = try sqlite3([databasePath, "SELECT name FROM sqlite_master WHERE tbl_name = 'leases';"])
        XCTAssertTrue(indexes.contains("leases_active_owner"), indexes)
        // The constraints still hold: an unknown state, a second active lease of one owner, an unknown network.
        for (statement, what) in [
            ("INSERT INTO leases VALUES ('blue', 167837940, 'bogus', '', 'x', '', '', '', 0, 0, 0, 0);", "a bad state"),
            ("INSERT INTO leases VALUES ('blue', 167837941, 'active', '', 'c1', '', '', '', 0, 0, 0, 0);", "c1 twice"),
            (
                "PRAGMA foreign_keys=ON; INSERT INTO leases VALUES ('red', 1, 'active', '', 'y', '', '', '', 0, 0, 0, 0);",
                "an unknown network"
            ),
        ] {
            let refused = try sqlite3Run([databasePath, statement])
            XCTAssertNotEqual(refused.status, 0, "the rebuilt table accepted \(what)")
            XCTAssertTrue(refused.text.contains("constraint failed"), "\(what): \(refused.text)")
        }
        let unchanged = try sqlite3([databasePath, rows])
        XCTAssertEqual(unchanged, before, "a refused statement changed a lease")

        // And the store serves from it: c1 keeps its address, a new owner gets a fresh one.
        store = try openStore()
        defer { store.close() }
        let kept = try await acquire(store, "blue", "c1")
        XCTAssertTrue(before.contains("|\(kept.address.value)|active|"), "\(kept.address) \(before)")
        let fresh = try await acquire(store, "blue", "c4")
        XCTAssertFalse(before.contains("|\(fresh.address.value)|"), "\(fresh.address) was already taken")
    }

    func testRefusesAStoreWithANewerSchemaWithoutChangingIt() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        _ = try await acquire(store, "blue", "c1")
        store.close()
        try withDatabase { db in try db.execute("PRAGMA user_version = 99") }
        let original = try fileBytes(databasePath)

        let error = expectInitError(.storage) { try SQLiteLeaseStore(directory: directory.path, clock: clock) }
        XCTAssertTrue(error?.message.contains("newer") == true, "\(String(describing: error))")
        XCTAssertEqual(try fileBytes(databasePath), original, "the refused file must be left as it was")
    }

    func testRefusesACorruptStoreWithoutChangingIt() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        for index in 0..<50 { _ = try await acquire(store, "blue", "c\(index)") }
        store.close()

        // Keep the header and page 1 (the schema); overwrite every later page with garbage.
        var bytes = try fileBytes(databasePath)
        XCTAssertGreaterThan(bytes.count, 8192, "the fixture needs more than two pages")
        for index in 4096..<bytes.count { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 7) }
        try bytes.write(to: URL(fileURLWithPath: databasePath))
        let listing = try directoryListing(directory)

        let error = expectInitError(.storage) { try SQLiteLeaseStore(directory: directory.path, clock: clock) }
        XCTAssertNotNil(error, "a corrupt store is refused at start")
        XCTAssertEqual(try fileBytes(databasePath), bytes, "the refused file must be left as it was")
        XCTAssertEqual(try directoryListing(directory), listing)
    }
}
