import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

#if canImport(Glibc)
import Glibc
#endif

/// The data directory on a full filesystem (a small tmpfs made by the test): changes fail with `storage`, nothing
/// crashes, reads keep working, nothing acknowledged is lost, and the store recovers once space is freed.
final class StoreDiskFullTests: StoreTestCase {
    private var mountPoint: String?

    override func tearDownWithError() throws {
        if let mountPoint {
            _ = umount2(mountPoint, Int32(MNT_DETACH))
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
        try super.tearDownWithError()
    }

    private func mountSmallFilesystem() throws -> URL {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("netlease-full-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
        guard geteuid() == 0, mount("tmpfs", path.path, "tmpfs", 0, "size=4m,mode=0700") == 0 else {
            let why = "cannot mount a small tmpfs (needs root): \(String(cString: strerror(errno)))"
            try? FileManager.default.removeItem(at: path)
            try missingCapability(why)
        }
        mountPoint = path.path
        return path
    }

    /// Writes a file until the filesystem refuses more bytes.
    private func fill(_ directory: URL) -> URL {
        let filler = directory.appendingPathComponent("filler")
        FileManager.default.createFile(atPath: filler.path, contents: nil)
        let handle = FileHandle(forWritingAtPath: filler.path)!
        let chunk = Data(repeating: 0xAB, count: 64 * 1024)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        let small = Data(repeating: 0xCD, count: 512)
        while (try? handle.write(contentsOf: small)) != nil {}
        try? handle.close()
        return filler
    }

    func testAFullDiskFailsChangesWithStorageAndLosesNothingAcknowledged() async throws {
        let data = try mountSmallFilesystem().appendingPathComponent("data")
        let store = try openStore(in: data)
        _ = try await store.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/16")!))
        var acknowledged: [String: IPv4Address] = [:]
        for index in 0..<50 {
            let lease = try await store.acquire(
                network: "prod",
                owner: "before-\(index)",
                claim: nil,
                address: nil,
                ifname: ""
            )
            acknowledged[lease.owner] = lease.address
        }
        let filler = fill(data.deletingLastPathComponent())

        var refused = 0
        var accepted = 0
        for index in 0..<400 {
            do {
                // A long owner id makes each change take room (interface names are at most 15 bytes).
                let owner = "full-\(index)-" + String(repeating: "x", count: 200)
                let lease = try await store.acquire(
                    network: "prod",
                    owner: owner,
                    claim: nil,
                    address: nil,
                    ifname: "eth0"
                )
                acknowledged[lease.owner] = lease.address
                accepted += 1
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .storage, error.description)
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 0, "a full disk never refused a change")
        // Reads still work and show exactly what was acknowledged.
        let during = try await store.leases(.init(network: "prod"))
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: during.map { ($0.owner, $0.address) }), acknowledged)

        try FileManager.default.removeItem(at: filler)
        let after = try await store.acquire(network: "prod", owner: "after", claim: nil, address: nil, ifname: "")
        acknowledged[after.owner] = after.address

        store.close()
        let reopened = try openStore(in: data)
        let stored = try await reopened.leases(.init(network: "prod"))
        XCTAssertEqual(
            Dictionary(uniqueKeysWithValues: stored.map { ($0.owner, $0.address) }),
            acknowledged,
            "an acknowledged lease was lost or an unacknowledged one appeared"
        )
        XCTAssertEqual(Set(stored.map(\.address)).count, stored.count)
        print("disk full: \(accepted) changes fitted, \(refused) refused with 'storage', none lost")
    }
}
