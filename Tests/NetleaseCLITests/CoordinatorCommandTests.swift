import ArgumentParser
import XCTest

@testable import netlease

/// `netlease coordinator`: what operators and systemd units pass, and what is refused before anything starts.
final class CoordinatorCommandTests: XCTestCase {
    func testDefaults() throws {
        let command = try parse(["coordinator"], as: Netlease.Coordinator.self)
        XCTAssertEqual(command.listen, "0.0.0.0:7420")
        XCTAssertEqual(command.data, "./netlease-data")
        XCTAssertFalse(command.insecure)
        XCTAssertEqual(command.maxConnections, 4096)
        XCTAssertEqual(command.idleTimeout, 600)
        XCTAssertEqual(command.lineTimeout, 30)
        XCTAssertEqual(command.maxBatch, 4096)
        XCTAssertNil(command.tls.tlsCert)
        XCTAssertNil(command.tls.tlsKey)
        XCTAssertNil(command.tls.tlsCa)
        XCTAssertEqual(command.logLevel, "info")
        XCTAssertNil(command.metrics)
    }

    func testEveryOption() throws {
        let command = try parse(
            [
                "coordinator", "--listen", "127.0.0.1:0", "--data", "/var/lib/netlease", "--insecure",
                "--max-connections", "10", "--idle-timeout", "5", "--line-timeout", "2", "--max-batch", "1",
                "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--log-level", "debug",
                "--metrics", "127.0.0.1:9420",
            ],
            as: Netlease.Coordinator.self
        )
        XCTAssertEqual(command.listen, "127.0.0.1:0")
        XCTAssertEqual(command.data, "/var/lib/netlease")
        XCTAssertTrue(command.insecure)
        XCTAssertEqual(command.maxConnections, 10)
        XCTAssertEqual(command.idleTimeout, 5)
        XCTAssertEqual(command.lineTimeout, 2)
        XCTAssertEqual(command.maxBatch, 1)
        XCTAssertEqual(command.tls.tlsCert, "c.pem")
        XCTAssertEqual(command.tls.tlsKey, "k.pem")
        XCTAssertEqual(command.tls.tlsCa, "ca.pem")
        XCTAssertEqual(command.logLevel, "debug")
        XCTAssertEqual(command.metrics, "127.0.0.1:9420")
    }

    func testBadValuesAreRefused() {
        assertRefused(["coordinator", "--max-batch", "0"], "--max-batch must be positive")
        assertRefused(["coordinator", "--max-connections", "0"], "--max-connections must be positive")
        assertRefused(["coordinator", "--idle-timeout", "0"], "--idle-timeout must be positive")
        assertRefused(["coordinator", "--line-timeout", "0"], "--line-timeout must be positive")
        assertRefused(["coordinator", "--log-level", "nope"], "unknown --log-level 'nope'")
        assertRefused(["coordinator", "--max-batch", "many"], "The value 'many' is invalid for '--max-batch <n>'")
        assertRefused(["coordinator", "--metrics", "127.0.0.1"], "--metrics needs ADDR:PORT, e.g. 127.0.0.1:9420")
        assertRefused(
            ["coordinator", "--metrics", "127.0.0.1:99999"],
            "--metrics: '99999' in '127.0.0.1:99999' is not a port (0-65535)"
        )
    }

    func testTLSNeedsAllThreeFiles() {
        assertRefused(
            ["coordinator", "--tls-cert", "c.pem"],
            "TLS needs --tls-cert, --tls-key and --tls-ca together; missing: --tls-key, --tls-ca"
        )
        assertRefused(
            ["coordinator", "--tls-key", "k.pem", "--tls-ca", "ca.pem"],
            "TLS needs --tls-cert, --tls-key and --tls-ca together; missing: --tls-cert"
        )
    }
}
