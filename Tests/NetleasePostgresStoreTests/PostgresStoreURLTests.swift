import Foundation
import NetleaseCore
import XCTest

@testable import NetleasePostgresStore

final class PostgresStoreURLTests: XCTestCase {
    func testParsesUserHostPortDatabaseAndSSLMode() throws {
        let url = try PostgresStoreURL(parsing: "postgres://netlease@db.example:6543/leases?sslmode=require")
        XCTAssertEqual(url.user, "netlease")
        XCTAssertEqual(url.host, "db.example")
        XCTAssertEqual(url.port, 6543)
        XCTAssertEqual(url.database, "leases")
        XCTAssertEqual(url.sslMode, .require)
        XCTAssertNil(url.password)
        XCTAssertEqual(url.description, "postgres://netlease@db.example:6543/leases?sslmode=require")

        let defaults = try PostgresStoreURL(parsing: "postgresql://u@10.0.0.5/d")
        XCTAssertEqual(defaults.port, 5432)
        XCTAssertEqual(defaults.sslMode, .prefer)
        XCTAssertEqual(defaults.description, "postgres://u@10.0.0.5:5432/d")

        let verified = try PostgresStoreURL(parsing: "postgres://u@h/d?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        XCTAssertEqual(verified.sslMode, .verifyFull)
        XCTAssertEqual(verified.sslRootCertificate, "/etc/ca.pem")
        XCTAssertTrue(PostgresStoreURL.isPostgres("postgres://u@h/d"))
        XCTAssertFalse(PostgresStoreURL.isPostgres("sqlite"))
    }

    func testRefusesIncompleteOrUnknownURLs() {
        for text in [
            "postgres://host/db", "postgres://u@/db", "postgres://u@host", "postgres://u@host/", "mysql://u@h/d",
            "postgres://u@h/d?sslmode=sometimes", "postgres://u@h/d?timeout=3", "postgres://u@h:99999/d",
            "postgres://u@h/a/b",
        ] {
            XCTAssertThrowsError(try PostgresStoreURL(parsing: text), text) { error in
                XCTAssertEqual((error as? NetleaseError)?.code, .badRequest, "\(text): \(error)")
            }
        }
    }

    func testRefusesAPasswordInTheURLWithoutEchoingIt() {
        XCTAssertThrowsError(try PostgresStoreURL(parsing: "postgres://u:hunter2@h/d")) { error in
            let text = "\(error)"
            XCTAssertFalse(text.contains("hunter2"), text)
            XCTAssertTrue(text.contains("PGPASSWORD"), text)
        }
        XCTAssertEqual(PostgresStoreURL.redacted("postgres://u:hunter2@h/d?x"), "postgres://u:***@h/d?x")
        XCTAssertEqual(PostgresStoreURL.redacted("postgres://u@h/d"), "postgres://u@h/d")
    }

    func testPasswordComesFromTheFileThenFromPGPASSWORD() throws {
        let url = try PostgresStoreURL(parsing: "postgres://u@h/d")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pgpass-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        FileManager.default.createFile(
            atPath: file,
            contents: Data("s3cret\nignored\n".utf8),
            attributes: [.posixPermissions: 0o600]
        )
        XCTAssertEqual(try url.withPassword(file: file, environment: ["PGPASSWORD": "env"]).password, "s3cret")
        XCTAssertEqual(try url.withPassword(file: nil, environment: ["PGPASSWORD": "env"]).password, "env")
        XCTAssertNil(try url.withPassword(file: nil, environment: [:]).password)
        XCTAssertFalse(try url.withPassword(file: file, environment: [:]).description.contains("s3cret"))
        // Written with CRLF line endings: the password is the first line without its ending.
        try Data("s3cret\r\nignored\r\n".utf8).write(to: URL(fileURLWithPath: file))
        XCTAssertEqual(try url.withPassword(file: file, environment: [:]).password, "s3cret")

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        XCTAssertThrowsError(try url.withPassword(file: file, environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("chmod 600"), "\(error)")
        }
        XCTAssertThrowsError(try url.withPassword(file: file + ".missing", environment: [:]))
    }

    func testTLSSettingsFollowSSLMode() throws {
        for (mode, enforced, allowed) in [
            ("disable", false, false), ("prefer", false, true), ("require", true, true),
            ("verify-ca", true, true), ("verify-full", true, true),
        ] {
            let url = try PostgresStoreURL(parsing: "postgres://u@h/d?sslmode=\(mode)")
            let configuration = try PostgresLeaseStore.connectionConfiguration(url)
            XCTAssertEqual(configuration.tls.isEnforced, enforced, mode)
            XCTAssertEqual(configuration.tls.isAllowed, allowed, mode)
        }
        let missingCA = try PostgresStoreURL(parsing: "postgres://u@h/d?sslmode=verify-full&sslrootcert=/nonexistent")
        XCTAssertThrowsError(try PostgresLeaseStore.connectionConfiguration(missingCA))
    }
}
