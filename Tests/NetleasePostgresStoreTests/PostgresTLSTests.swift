import Foundation
import NetleaseCore
import NetleaseTesting
import XCTest

@testable import NetleasePostgresStore

/// `sslmode` against a server that requires TLS on TCP (its own, with a self-signed certificate).
final class PostgresTLSTests: XCTestCase {
    private var server: PostgresTestServer!
    private var database = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        _ = try PostgresTestDatabase.server()  // skips without PostgreSQL
        server = try PostgresTestServer.start(tls: true)
        database = try server.makeDatabase()
    }

    override func tearDownWithError() throws {
        server?.stop()
        try super.tearDownWithError()
    }

    private func url(_ query: String) throws -> PostgresStoreURL {
        try PostgresStoreURL(parsing: server.url(database: database) + query)
    }

    /// The netlease sessions of the database and whether each uses TLS.
    private func sessionsUseTLS() throws -> [String] {
        try server.rows(
            "SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'netlease'",
            database: database
        ).map { $0[0] }
    }

    func testRequireAndPreferEncryptAndDisableIsRefusedByTheServer() async throws {
        let store = try await PostgresLeaseStore.open(url: try url("?sslmode=require"))
        _ = try await store.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("10.1.0.0/24")!))
        XCTAssertEqual(try sessionsUseTLS(), ["t"])
        store.close()

        let preferred = try await PostgresLeaseStore.open(url: try url(""))
        XCTAssertEqual(try sessionsUseTLS(), ["t"], "prefer uses TLS when the server offers it")
        preferred.close()

        do {
            _ = try await PostgresLeaseStore.open(url: try url("?sslmode=disable"))
            XCTFail("a plaintext connection was accepted by a server that requires TLS")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .storage, error.description)
        }
    }

    func testVerifyFullAcceptsTheServersCertificateOnlyWithItsCA() async throws {
        let verified = try await PostgresLeaseStore.open(
            url: try url("?sslmode=verify-full&sslrootcert=\(server.certificateFile)")
        )
        XCTAssertEqual(try sessionsUseTLS(), ["t"])
        verified.close()

        // Without the server's CA (the system's roots do not know a self-signed certificate) the handshake fails.
        for mode in ["verify-full", "verify-ca"] {
            do {
                _ = try await PostgresLeaseStore.open(url: try url("?sslmode=\(mode)"))
                XCTFail("\(mode) accepted a certificate no trusted CA signed")
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .storage, error.description)
            }
        }
    }
}
