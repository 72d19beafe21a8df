import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

/// SQLite only: the file (and its write-ahead log) never holds the secret, only its hash.
final class SQLiteCredentialFileTests: StoreTestCase {
    func testTheFileHoldsTheHashNotTheSecret() async throws {
        let secret = "netlease-host:h1:" + String(repeating: "5a", count: 32)
        let store = try openStore()
        let hash = SecretHash(hashing: secret)
        _ = try await store.storeHostCredential(StoredHostCredential(host: "h1", hash: hash, issued: 1))
        var bytes = Data()
        for suffix in ["", "-wal"] {
            bytes += FileManager.default.contents(atPath: databasePath + suffix) ?? Data()
        }
        XCTAssertNil(bytes.range(of: Data(secret.utf8)), "the secret is in the store's files")
        XCTAssertNotNil(bytes.range(of: Data(hash.stored.utf8)), "the hash is not in the store's files")
    }
}
