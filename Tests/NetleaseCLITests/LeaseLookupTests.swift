import Foundation
import XCTest

@testable import netlease

/// `netlease leases --address IP`: who holds an address.
final class LeaseLookupTests: XCTestCase {
    private var coordinator: CLICoordinator?

    override func tearDown() async throws {
        await coordinator?.stop()
        coordinator = nil
    }

    func testABadAddressIsAUsageError() {
        assertRefused(["leases", "--address", "10.1.0"], "--address '10.1.0' is not an IPv4 address")
        XCTAssertEqual(try parse(["leases", "--address", "10.1.0.7"], as: Netlease.Leases.self).address, "10.1.0.7")
    }

    func testFindsTheHolderInTheNetworkThatHoldsTheAddress() async throws {
        let started = try await CLICoordinator.start()
        coordinator = started
        for (name, subnet) in [("blue", "10.1.0.0/24"), ("red", "10.2.0.0/24")] {
            let run = try await started.netlease(["network", "create", name, "--subnet", subnet])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        for (network, owner, address) in [("blue", "web-1", "10.1.0.7"), ("red", "db-1", "10.2.0.7")] {
            let run = try await started.netlease(
                ["lease", "acquire", "--network", network, "--owner", owner, "--address", address])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        _ = try await started.netlease(["lease", "acquire", "--network", "blue", "--owner", "web-2"])

        let found = try await started.netlease(["leases", "--address", "10.1.0.7", "--json"])
        XCTAssertEqual(found.status, 0, found.stderr)
        let records = try XCTUnwrap(try found.stdoutJSON() as? [[String: Any]])
        XCTAssertEqual(records.map { $0["network"] as? String }, ["blue"])
        XCTAssertEqual(records.map { $0["owner"] as? String }, ["web-1"])

        // Filters combine: the holder is not in red, and not web-2.
        let elsewhere = try await started.netlease(["leases", "--address", "10.1.0.7", "--network", "red", "--json"])
        XCTAssertEqual((try elsewhere.stdoutJSON() as? [Any])?.count, 0)
        let other = try await started.netlease(["leases", "--address", "10.1.0.7", "--owner", "web-2", "--json"])
        XCTAssertEqual((try other.stdoutJSON() as? [Any])?.count, 0)

        for unheld in ["10.1.0.99", "192.168.1.1"] {
            let run = try await started.netlease(["leases", "--address", unheld, "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual((try run.stdoutJSON() as? [Any])?.count, 0, unheld)
        }

        let table = try await started.netlease(["leases", "--address", "10.2.0.7"])
        let lines = table.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, table.stdout)  // header + the record
        XCTAssertTrue(lines.last?.hasPrefix("red") == true, table.stdout)
    }
}
