import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
import XCTest

/// Epochs never repeat for a host, even when the coordinator's store is restored from an older backup: the agent
/// states its last epoch when it joins again (`last-epoch`), and the coordinator continues above it.
final class EpochAfterRestoreTests: XCTestCase {
    func testAHostNeverGetsAnEpochItHadBeforeAfterARestoreFromAnOlderBackup() async throws {
        let live = try await CoordinatorHarness.start()
        let backup: Data
        let lastEpoch: Int64
        do {
            (backup, lastEpoch) = try await live.connect { c in
                _ = try await c.createNetwork(NetworkSpec(name: "blue", subnet: IPv4Subnet("172.30.0.0/24")!))
                let underlay = IPv4Address("192.0.2.1")!
                _ = try await c.join(host: "h1", underlay: underlay, networks: ["blue"])
                let backup = try await c.backup().data
                // Two more joins after the backup: epochs the backup does not know.
                _ = try await c.join(host: "h1", underlay: underlay, networks: ["blue"])
                return (backup, try await c.join(host: "h1", underlay: underlay, networks: ["blue"]).epoch)
            }
        } catch {
            await live.stop()
            throw error
        }
        await live.stop()
        XCTAssertEqual(lastEpoch, 3)

        let restoredDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-restored-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: restoredDirectory, withIntermediateDirectories: true)
        try backup.write(to: restoredDirectory.appendingPathComponent(SQLiteLeaseStore.fileName))
        let restored = try await CoordinatorHarness.start(directory: restoredDirectory)
        do {
            try await restored.connect { c in
                let underlay = IPv4Address("192.0.2.1")!
                let joined = try await c.join(host: "h1", underlay: underlay, networks: ["blue"], lastEpoch: lastEpoch)
                XCTAssertGreaterThan(joined.epoch, lastEpoch, "the restored coordinator repeated an epoch of h1")
                // The epoch of the last join before the restore is stale: it is not this host's any more.
                do {
                    _ = try await c.heartbeat(host: "h1", epoch: lastEpoch)
                    XCTFail("a heartbeat with the epoch from before the restore was accepted")
                } catch let error as NetleaseError {
                    XCTAssertEqual(error.code, .staleEpoch, "\(error)")
                }
                // A last epoch no coordinator could have given is refused, and nothing changes.
                do {
                    _ = try await c.join(
                        host: "h1",
                        underlay: underlay,
                        networks: ["blue"],
                        lastEpoch: Ledger.maximumEpoch + 1
                    )
                    XCTFail("a last-epoch above the maximum was accepted")
                } catch let error as NetleaseError {
                    XCTAssertEqual(error.code, .badRequest, "\(error)")
                }
                let beat = try await c.heartbeat(host: "h1", epoch: joined.epoch)
                XCTAssertEqual(beat.epoch, joined.epoch)
            }
        } catch {
            await restored.stop()
            throw error
        }
        await restored.stop()
    }

    /// One host credential stating the highest `last-epoch` there is used to move the cluster-wide counter to the end
    /// of the range: every other host's next JOIN then got an epoch its agent could not state back, and was refused
    /// for good. Now only the stating host's epoch goes up; the others keep joining — also after a restart.
    func testAHostStatingAHugeLastEpochCannotLockOtherHostsOut() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-epoch-lead-\(UUID().uuidString)")
        var harness = try await CoordinatorHarness.start(directory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let mallory = try HostCredential.generate(for: "mallory")
            let hash = SecretHash(hashing: mallory.text).stored
            _ = try await harness.connect { c in
                _ = try await c.createNetwork(NetworkSpec(name: "blue", subnet: IPv4Subnet("172.30.0.0/24")!))
                _ = try await c.setHostCredential(host: "mallory", hash: hash)
            }
            let stated = Ledger.maximumEpoch - 1
            let attack = try await NetleaseConnection.connect(to: harness.endpoint, secret: mallory.text) { c in
                try await c.join(host: "mallory", underlay: IPv4Address("192.0.2.66")!, networks: [], lastEpoch: stated)
            }
            XCTAssertEqual(attack.epoch, Ledger.maximumEpoch, "the stating host's own epoch is above what it stated")

            var epoch = try await harness.connect { c in
                try await c.join(host: "h1", underlay: IPv4Address("192.0.2.1")!, networks: ["blue"]).epoch
            }
            XCTAssertLessThan(epoch, Ledger.maximumEpochLead, "another host's epoch followed the stated one")
            for round in 0..<2 {
                // h1's agent states its last epoch, as it does on every JOIN.
                epoch = try await harness.connect { c in
                    try await c.join(
                        host: "h1",
                        underlay: IPv4Address("192.0.2.1")!,
                        networks: ["blue"],
                        lastEpoch: epoch
                    ).epoch
                }
                XCTAssertLessThan(epoch, Ledger.maximumEpochLead, "round \(round)")
                await harness.stop(removeFiles: false)
                harness = try await CoordinatorHarness.start(directory: directory)
            }
            // The stating host has used up its epochs: it is told so, and no other host is.
            await expectNetleaseError(.conflict, "mallory's next JOIN") {
                _ = try await NetleaseConnection.connect(to: harness.endpoint, secret: mallory.text) { c in
                    try await c.join(
                        host: "mallory",
                        underlay: IPv4Address("192.0.2.66")!,
                        networks: [],
                        lastEpoch: attack.epoch - 1
                    )
                }
            }
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}
