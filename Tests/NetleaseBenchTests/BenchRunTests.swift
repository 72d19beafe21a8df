import NetleaseClient
import NetleaseCore
import NetleaseTesting
import XCTest

@testable import NetleaseBench

/// Short bench runs against a real coordinator on 127.0.0.1: what the bench reports as acknowledged is what the
/// coordinator lists.
final class BenchRunTests: XCTestCase {
    private var harness: CoordinatorHarness!

    override func setUp() async throws {
        harness = try await CoordinatorHarness.start()
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private func runner(_ configure: (inout BenchOptions) -> Void) -> BenchRunner {
        var options = BenchOptions()
        options.connections = 2
        options.duration = 0.3
        configure(&options)
        return BenchRunner(options: options, endpoint: harness.endpoint, secret: harness.secret?.text)
    }

    /// Active leases of `network` whose owner the load part of a run named (`b-<run>-…`).
    private func benchLeases(_ network: String = BenchOptions.defaults.network) async throws -> [Lease] {
        try await harness.connect { try await $0.leases(Ledger.LeaseFilter(network: network, state: .active)) }
            .filter { $0.owner.hasPrefix("b-") }
    }

    func testALeanRunsAcknowledgementsAreWhatTheCoordinatorLists() async throws {
        let report = try await runner { $0.keep = true }.runLoad()
        XCTAssertTrue(report.verification.ok, "\(report.verification.problems)")
        XCTAssertEqual(report.errors, [:])
        XCTAssertGreaterThan(report.acquires, 0)
        let listed = try await benchLeases()
        XCTAssertEqual(report.verification.acknowledgedHeld, listed.count)
        XCTAssertGreaterThanOrEqual(listed.count, report.acquires, "acknowledged after the window still count")
        XCTAssertEqual(Set(listed.map(\.address)).count, listed.count)
    }

    func testARunBoundedByThePoolEndsEarlyWithEveryAddressAcknowledged() async throws {
        // A /27 has 30 usable addresses: the budget ends the run long before its 30 s.
        let report = try await runner {
            $0.network = "tiny"
            $0.subnet = "10.251.0.0/27"
            $0.pipeline = 4
            $0.duration = 30
        }.runLoad()
        XCTAssertTrue(report.verification.ok, "\(report.verification.problems)")
        XCTAssertTrue(report.budgetExhausted)
        XCTAssertLessThan(report.window, 30)
        XCTAssertEqual(report.poolBudget, 30)
        XCTAssertEqual(report.acquires, 30)
        XCTAssertEqual(report.verification.acknowledgedHeld, 30)
        XCTAssertEqual(report.errors, [:])
        let networks = try await harness.connect { try await $0.networks() }
        XCTAssertFalse(networks.contains { $0.spec.name == "tiny" }, "the bench deletes the network it created")
    }

    func testReleaseRunsLeaveNothingBehindWithEitherClient() async throws {
        for kind in ["lean", "standard"] {
            let report = try await runner {
                $0.release = true
                $0.clientKind = kind
                $0.keep = true
            }.runLoad()
            XCTAssertTrue(report.verification.ok, "\(kind): \(report.verification.problems)")
            XCTAssertGreaterThan(report.releases, 0, kind)
            XCTAssertEqual(report.errors, [:], kind)
            XCTAssertEqual(report.verification.acknowledgedHeld, 0, kind)
            let left = try await benchLeases()
            XCTAssertEqual(left.count, 0, kind)
        }
    }
}
