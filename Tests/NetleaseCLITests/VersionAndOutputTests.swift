import Foundation
import NetleaseCore
import XCTest

@testable import netlease

/// The version and the `--json` output, read from the built executable as scripts read it.
final class VersionAndOutputTests: XCTestCase {
    private var coordinator: CLICoordinator?

    override func tearDown() async throws {
        await coordinator?.stop()
        coordinator = nil
    }

    /// A coordinator for this test, stopped in `tearDown`.
    private func startCoordinator() async throws -> CLICoordinator {
        let started = try await CLICoordinator.start()
        coordinator = started
        return started
    }

    func testVersionFlagPrintsTheOneVersion() async throws {
        let run = try await BuiltExecutable.run("netlease", ["--version"])
        XCTAssertEqual(run.status, 0)
        XCTAssertEqual(run.stdout, NetleaseVersion.current + "\n")
    }

    /// `stats --json` printed every field through `Int64(value) ?? 0`, so the store id (a UUID) came out as 0.
    func testStatsJSONKeepsIdentifiersAsStrings() async throws {
        let coordinator = try await startCoordinator()
        let run = try await coordinator.netlease(["stats", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let object = try XCTUnwrap(try run.stdoutJSON() as? [String: Any])
        XCTAssertEqual(object["store-id"] as? String, coordinator.harness.store.identity().id)
        XCTAssertEqual(object["version"] as? String, NetleaseVersion.current)
        XCTAssertEqual(object["networks"] as? Int, 0)
        XCTAssertNotNil(object["requests"] as? Int)
    }

    func testStatsJSONTypesFieldsByNameNotByLooks() throws {
        let stats = StatsJSON([
            (key: "store-id", value: "12345"), (key: "requests", value: "7"), (key: "future-field", value: "x-1"),
        ])
        XCTAssertEqual(stats.values["store-id"], .text("12345"))
        XCTAssertEqual(stats.values["requests"], .number(7))
        XCTAssertEqual(stats.values["future-field"], .text("x-1"))
    }
}
