import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// BACKUP while clients acquire and release on other connections, then each backup restored the way
/// docs/OPERATIONS.md says (stop, move `netlease.db*` aside, install the file as `netlease.db` mode 0600, start):
/// the restored coordinator must hold one consistent snapshot of what was acknowledged.
///
/// What "consistent" means, per owner, for a backup requested at S and answered at R (the client's own instants;
/// every owner is acquired once and maybe released once, each on one connection in order):
/// - acquired and acknowledged before S, and its release (if any) sent after R: present, with the acknowledged address;
/// - its release acknowledged before S: not active;
/// - its acquire sent after R: absent;
/// - anything active in the backup was acknowledged to its client with that address (nothing unacknowledged, nothing
///   from after the reply); operations in flight during [S, R] may fall either side.
/// Plus: unique addresses and owners, `PRAGMA integrity_check` = ok, a plain rollback-journal file.
final class BackupUnderLoadTests: XCTestCase {
    private var directory: String!
    private var scratch: String!
    private var coordinator: CoordinatorProcess?

    override func setUpWithError() throws {
        let base = FileManager.default.temporaryDirectory
        directory = base.appendingPathComponent("netlease-backup-load-\(UUID().uuidString)").path
        scratch = base.appendingPathComponent("netlease-backup-files-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        coordinator?.cleanUp()
        coordinator = nil
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// One owner's life as its client saw it.
    struct History: Sendable {
        var owner: String
        var address: IPv4Address?
        var acquireSent: ContinuousClock.Instant
        var acquireAcked: ContinuousClock.Instant?
        var releaseSent: ContinuousClock.Instant?
        var releaseAcked: ContinuousClock.Instant?
    }

    /// Shared by the writers and the backup task: acquires acknowledged so far, and when to stop.
    final class LoadControl: Sendable {
        let acknowledged = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
    }

    struct Snapshot: Sendable {
        var name: String
        var sent: ContinuousClock.Instant
        var replied: ContinuousClock.Instant
        var file: String
        var generation: Int64
    }

    func testBackupsTakenUnderConcurrentWritesRestoreToConsistentSnapshots() async throws {
        let sqlite = "/usr/bin/sqlite3"
        guard FileManager.default.isExecutableFile(atPath: sqlite) else {
            try missingCapability("\(sqlite) is not installed; the backup's integrity check needs it")
        }
        let live = try await CoordinatorProcess.start(directory: directory)
        coordinator = live
        try await live.connect { c in
            _ = try await c.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("10.50.0.0/16")!))
        }
        let endpoint = live.endpoint
        let secret = try live.secret
        let seedSource = ReplayableRandom(test: "backup under load")
        let clients = 6
        let thresholds = [150, 450, 900]
        let control = LoadControl()
        let scratch = self.scratch!

        let (histories, snapshots) = try await withDeadline(.seconds(240), "load with backups") {
            try await withThrowingTaskGroup(of: ([History], [Snapshot]).self) { group in
                for index in 0..<clients {
                    group.addTask {
                        var random = ReplayableRandom(seed: seedSource.seed &+ UInt64(index))
                        return try await NetleaseConnection.connect(to: endpoint, secret: secret) { c in
                            var histories: [History] = []
                            var held: [Int] = []
                            while !control.stop.load(ordering: .relaxed), histories.count < 4_000 {
                                if !held.isEmpty, Int.random(in: 0..<3, using: &random) == 0 {
                                    let pick = held.remove(at: Int.random(in: 0..<held.count, using: &random))
                                    histories[pick].releaseSent = .now
                                    _ = try await c.release(
                                        ReleaseRequest(
                                            network: "prod",
                                            owner: histories[pick].owner
                                        )
                                    )
                                    histories[pick].releaseAcked = .now
                                } else {
                                    var history = History(owner: "w\(index)-\(histories.count)", acquireSent: .now)
                                    let lease = try await c.acquire(
                                        AcquireRequest(
                                            network: "prod",
                                            owner: history.owner
                                        )
                                    )
                                    history.acquireAcked = .now
                                    history.address = lease.address
                                    histories.append(history)
                                    held.append(histories.count - 1)
                                    control.acknowledged.add(1, ordering: .relaxed)
                                }
                            }
                            return (histories, [])
                        }
                    }
                }
                group.addTask {
                    defer { control.stop.store(true, ordering: .relaxed) }
                    return try await NetleaseConnection.connect(to: endpoint, secret: secret) { c in
                        var snapshots: [Snapshot] = []
                        for threshold in thresholds + [thresholds.last! + 300] {
                            while control.acknowledged.load(ordering: .relaxed) < threshold {
                                try await Task.sleep(for: .milliseconds(5))
                            }
                            // The last threshold only keeps the writers going after the last backup.
                            guard snapshots.count < thresholds.count else { break }
                            let sent = ContinuousClock.now
                            let backup = try await c.backup()
                            let replied = ContinuousClock.now
                            let file = (scratch as NSString).appendingPathComponent("backup-\(snapshots.count).db")
                            guard
                                FileManager.default.createFile(
                                    atPath: file,
                                    contents: backup.data,
                                    attributes: [.posixPermissions: 0o600]
                                )
                            else { throw NetleaseError(.storage, "cannot write \(file)") }
                            snapshots.append(
                                Snapshot(
                                    name: "backup \(snapshots.count + 1)",
                                    sent: sent,
                                    replied: replied,
                                    file: file,
                                    generation: backup.generation
                                )
                            )
                        }
                        return ([], snapshots)
                    }
                }
                var histories: [History] = []
                var snapshots: [Snapshot] = []
                for try await (h, s) in group {
                    histories += h
                    snapshots += s
                }
                return (histories, snapshots)
            }
        }
        XCTAssertEqual(snapshots.count, thresholds.count)
        XCTAssertEqual(live.stop(), 0, "the coordinator did not stop cleanly: \(live.log)")
        let end = ContinuousClock.now
        print(
            "backup under load: \(histories.count) acquires, "
                + "\(histories.filter { $0.releaseAcked != nil }.count) releases, \(snapshots.count) backups"
        )

        // The live store at the end is a snapshot too, with nothing in flight: the durability baseline.
        let final = try await restoredLeases(nil)
        check(
            final,
            against: Snapshot(name: "live store", sent: end, replied: end, file: "", generation: 0),
            histories
        )

        for snapshot in snapshots {
            let integrity = try shell(sqlite, ["-batch", "-bail", snapshot.file, "PRAGMA integrity_check;"])
            XCTAssertEqual(integrity, "ok", "\(snapshot.name): integrity check")
            let journal = try shell(sqlite, ["-batch", "-bail", snapshot.file, "PRAGMA journal_mode;"])
            XCTAssertEqual(journal, "delete", "\(snapshot.name): a backup must open without a WAL")
            let leases = try await restoredLeases(snapshot.file)
            check(leases, against: snapshot, histories)
        }
    }

    /// Restores `file` (nil: keeps the live database) into the data directory as docs/OPERATIONS.md describes,
    /// starts the coordinator on it, lists every active lease of `prod` and stops it again.
    private func restoredLeases(_ file: String?) async throws -> [Lease] {
        if let file {
            let replaced = (scratch as NSString).appendingPathComponent("replaced-\(UUID().uuidString)")
            try FileManager.default.createDirectory(atPath: replaced, withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: directory)
            where name.hasPrefix("netlease.db") {
                try FileManager.default.moveItem(
                    atPath: (directory as NSString).appendingPathComponent(name),
                    toPath: (replaced as NSString).appendingPathComponent(name)
                )
            }
            let target = (directory as NSString).appendingPathComponent("netlease.db")
            try FileManager.default.copyItem(atPath: file, toPath: target)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: target)
        }
        let restored = try await CoordinatorProcess.start(directory: directory)
        coordinator = restored
        let leases = try await restored.connect { try await $0.leases(.init(network: "prod", state: .active)) }
        XCTAssertEqual(restored.stop(), 0, "the restored coordinator did not stop cleanly")
        return leases
    }

    private func check(
        _ leases: [Lease],
        against snapshot: Snapshot,
        _ histories: [History],
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let name = snapshot.name
        XCTAssertEqual(
            Set(leases.map(\.address)).count,
            leases.count,
            "\(name): an address is held twice",
            file: file,
            line: line
        )
        XCTAssertEqual(
            Set(leases.map(\.owner)).count,
            leases.count,
            "\(name): an owner holds two addresses",
            file: file,
            line: line
        )
        let byOwner = Dictionary(leases.map { ($0.owner, $0) }, uniquingKeysWith: { first, _ in first })
        let known = Dictionary(uniqueKeysWithValues: histories.map { ($0.owner, $0) })
        var inFlight = 0
        for lease in leases {
            guard let history = known[lease.owner] else {
                XCTFail(
                    "\(name): \(lease.owner) holds \(lease.address) but no client asked for it",
                    file: file,
                    line: line
                )
                continue
            }
            XCTAssertEqual(
                history.address,
                lease.address,
                "\(name): \(lease.owner) holds an address it was never acknowledged",
                file: file,
                line: line
            )
            XCTAssertLessThan(
                history.acquireSent,
                snapshot.replied,
                "\(name): \(lease.owner) was acquired after the backup's reply",
                file: file,
                line: line
            )
            if let released = history.releaseAcked, released < snapshot.sent {
                XCTFail(
                    "\(name): \(lease.owner) still active although its release was acknowledged before the backup",
                    file: file,
                    line: line
                )
            }
        }
        for history in histories {
            if let acked = history.acquireAcked, acked >= snapshot.sent, history.acquireSent < snapshot.replied {
                inFlight += 1
            }
            guard let acked = history.acquireAcked, acked < snapshot.sent else { continue }
            if let releaseSent = history.releaseSent, releaseSent <= snapshot.replied {
                if history.releaseAcked.map({ $0 >= snapshot.sent }) ?? true { inFlight += 1 }
                continue
            }
            XCTAssertEqual(
                byOwner[history.owner]?.address,
                history.address,
                "\(name): \(history.owner) was acknowledged before the backup but is missing from it",
                file: file,
                line: line
            )
        }
        print("\(name): \(leases.count) active leases, \(inFlight) operations in flight during the backup")
    }

    /// Runs a tool to completion; its trimmed stdout.
    private func shell(_ executable: String, _ arguments: [String]) throws -> String {
        let output = try ChildProcess.run(executable: executable, arguments: arguments, timeout: .seconds(30))
        let text = String(decoding: output.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(
            output.termination,
            .exited(0),
            "\(executable) \(arguments): \(String(decoding: output.stderr, as: UTF8.self))"
        )
        return text
    }
}
