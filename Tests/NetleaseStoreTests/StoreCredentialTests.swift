import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

/// Host credentials in the store (contract; the PostgreSQL twin runs it on a shared database): one per host,
/// replaced by issuing again, gone after a revocation, the same after a restart, and only ever a salted hash.
class StoreCredentialTests: StoreTestCase {
    func testCredentialsAreReplacedRevokedAndKeptAcrossRestarts() async throws {
        var store = try await credentialStore(try await makeStore())
        let first = StoredHostCredential(host: "h1", hash: SecretHash(hashing: "first"), issued: 1_000)
        let other = StoredHostCredential(host: "h2", hash: SecretHash(hashing: "other"), issued: 2_000)
        let firstReplaced = try await store.storeHostCredential(first)
        let otherReplaced = try await store.storeHostCredential(other)
        XCTAssertFalse(firstReplaced)
        XCTAssertFalse(otherReplaced)

        store = try await credentialStore(try await restart(store as! any LeaseStore))
        let read = try await store.hostCredential("h1")
        XCTAssertEqual(read, first)
        XCTAssertEqual(read?.hash.matches("first"), true)
        XCTAssertEqual(read?.hash.matches("other"), false)

        let second = StoredHostCredential(host: "h1", hash: SecretHash(hashing: "second"), issued: 3_000)
        let replaced = try await store.storeHostCredential(second)
        XCTAssertTrue(replaced)
        let revoked = try await store.revokeHostCredential("h2")
        let revokedAgain = try await store.revokeHostCredential("h2")
        XCTAssertTrue(revoked)
        XCTAssertFalse(revokedAgain, "a second revocation finds nothing")

        store = try await credentialStore(try await restart(store as! any LeaseStore))
        let afterRestart = try await store.hostCredential("h1")
        XCTAssertEqual(afterRestart?.hash.matches("second"), true)
        XCTAssertEqual(afterRestart?.hash.matches("first"), false, "the replaced credential is gone")
        let gone = try await store.hostCredential("h2")
        XCTAssertNil(gone)
        let all = try await store.hostCredentials()
        XCTAssertEqual(all, [second])
    }

    /// Names are keys byte for byte, as everywhere in the store: a host name differing in case is another host.
    func testHostNamesAreKeysByteForByte() async throws {
        let store = try await credentialStore(try await makeStore())
        _ = try await store.storeHostCredential(
            StoredHostCredential(host: "node1", hash: SecretHash(hashing: "s"), issued: 1)
        )
        let upper = try await store.hostCredential("NODE1")
        XCTAssertNil(upper)
        let revoked = try await store.revokeHostCredential("Node1")
        XCTAssertFalse(revoked)
        let kept = try await store.hostCredential("node1")
        XCTAssertNotNil(kept)
    }

    /// A backup (of either backend: an SQLite store file) carries the hashes: a coordinator restored from it
    /// authenticates every host as before.
    func testABackupCarriesTheCredentials() async throws {
        let store = try await makeStore()
        _ = try await credentialStore(store).storeHostCredential(
            StoredHostCredential(host: "h1", hash: SecretHash(hashing: "kept"), issued: 7)
        )
        let restored = makeTemporaryDirectory()
        try FileManager.default.createDirectory(at: restored, withIntermediateDirectories: true)
        _ = try await store.backup(to: restored.appendingPathComponent(SQLiteLeaseStore.fileName).path)
        let opened = try openStore(in: restored)
        let read = try await opened.hostCredential("h1")
        XCTAssertEqual(read?.hash.matches("kept"), true, "the backup lost the credential")
        XCTAssertEqual(read?.issued, 7)
    }

    func credentialStore(_ store: any LeaseStore) async throws -> any HostCredentialStore {
        try XCTUnwrap(store as? any HostCredentialStore, "\(type(of: store)) keeps no host credentials")
    }
}
