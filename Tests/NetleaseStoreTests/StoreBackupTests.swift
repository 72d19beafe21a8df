import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

#if canImport(Glibc)
import Glibc
#endif

final class StoreBackupTests: StoreTestCase {
    func testOnlineBackupHoldsEveryAcknowledgedChangeAndOpensAsAStore() async throws {
        let store = try openStore()
        _ = try await store.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
        var acknowledged: [String: IPv4Address] = [:]
        try await withThrowingTaskGroup(of: (String, IPv4Address).self) { group in
            for index in 0..<50 {
                group.addTask {
                    let lease = try await store.acquire(
                        network: "prod",
                        owner: "c\(index)",
                        claim: nil,
                        address: nil,
                        ifname: ""
                    )
                    return ("c\(index)", lease.address)
                }
            }
            for try await (owner, address) in group { acknowledged[owner] = address }
        }
        let before = store.identity()
        let target = makeTemporaryDirectory()
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let path = target.appendingPathComponent(SQLiteLeaseStore.fileName).path
        let identity = try await store.backup(to: path)
        XCTAssertEqual(identity, before, "the backup must hold exactly the acknowledged commits")
        // The live store keeps working and moves on.
        _ = try await store.acquire(network: "prod", owner: "after", claim: nil, address: nil, ifname: "")
        XCTAssertGreaterThan(store.identity().generation, identity.generation)

        // A backup never overwrites a file.
        do {
            _ = try await store.backup(to: path)
            XCTFail("backup overwrote an existing file")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .conflict)
        }

        let copy = try openStore(in: target)
        XCTAssertEqual(copy.identity(), identity)
        let leases = try await copy.leases(.init(network: "prod"))
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: leases.map { ($0.owner, $0.address) }), acknowledged)
    }

    /// A backup holds every lease and the host credentials' hashes: under the usual umask 022 SQLite would make it
    /// 0644, readable by every local user while it is written (the coordinator writes one in the temporary directory
    /// for every `netlease backup`).
    func testBackupFileIsNeverReadableByOthers() async throws {
        let store = try openStore()
        _ = try await store.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
        let target = makeTemporaryDirectory()
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let path = target.appendingPathComponent("backup.db").path
        let previous = umask(0o022)
        defer { umask(previous) }
        _ = try await store.backup(to: path)
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o7777, 0o600, "mode \(String(info.st_mode & 0o7777, radix: 8))")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: target.path),
            ["backup.db"],
            "no journal or other file is left beside the backup"
        )
    }

    /// A symbolic link at the backup's path — even one pointing nowhere yet — is refused, never followed: a backup
    /// would otherwise land wherever the link points.
    func testBackupRefusesASymbolicLinkAndLeavesIt() async throws {
        let store = try openStore()
        let target = makeTemporaryDirectory()
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let link = target.appendingPathComponent("backup.db").path
        let pointee = target.appendingPathComponent("elsewhere.db").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: pointee)
        do {
            _ = try await store.backup(to: link)
            XCTFail("backup followed a symbolic link")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .conflict)
            XCTAssertTrue(error.message.contains(link), error.message)
        }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), pointee)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pointee), "the link's target was created")
    }
}
