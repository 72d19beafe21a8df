import ArgumentParser
import Foundation
import XCTest

@testable import netlease

/// `--json` on every command, failures included: one JSON object on stderr, a non-zero exit, nothing on stdout.
final class JSONErrorTests: XCTestCase {
    private var coordinator: CLICoordinator?

    override func tearDown() async throws {
        await coordinator?.stop()
        coordinator = nil
    }

    /// Every command that prints a result takes `--json` (the daemons log instead: `--log-format json`).
    static let everyCommand: [[String]] = [
        ["network", "create", "n", "--subnet", "10.1.0.0/24"], ["network", "list"], ["network", "show", "n"],
        ["network", "delete", "n"], ["lease", "acquire", "--network", "n", "--owner", "o"],
        ["lease", "release", "--network", "n", "--owner", "o"],
        ["lease", "reserve", "--network", "n", "--address", "10.1.0.5"],
        ["lease", "unreserve", "--network", "n", "--address", "10.1.0.5"], ["leases"], ["hosts"],
        ["host", "remove", "h"], ["stats"], ["attach", "--network", "n", "--netns", "c", "--owner", "o"],
        ["detach", "--network", "n", "--owner", "o"], ["doctor"], ["backup", "--out", "/tmp/b.db"], ["demo"],
        ["bench"], ["docker-network", "n"], ["cni-config", "n"],
    ]

    func testEveryCommandTakesJSON() throws {
        for argv in Self.everyCommand {
            let parsed = try Netlease.parseAsRoot(argv + ["--json"])
            let mirror = Mirror(reflecting: parsed)
            let flag = mirror.children.first { $0.label == "_json" }?.value
            XCTAssertEqual((flag as? Flag<Bool>)?.wrappedValue, true, "\(argv)")
        }
    }

    func testAFailureIsOneJSONObjectOnStderr() async throws {
        let started = try await CLICoordinator.start()
        coordinator = started
        let run = try await started.netlease(["network", "show", "absent", "--json"])
        XCTAssertEqual(run.status, 1)
        XCTAssertEqual(run.stdout, "")
        XCTAssertEqual(run.stderr.filter { $0 == "\n" }.count, 1, run.stderr)
        let error = try XCTUnwrap((try run.stderrJSON() as? [String: Any])?["error"] as? [String: Any])
        XCTAssertEqual(error["code"] as? String, "unknown-network")
        XCTAssertEqual(error["message"] as? String, "no network named 'absent'")
    }

    func testWithoutJSONAFailureIsTheTextLine() async throws {
        let started = try await CLICoordinator.start()
        coordinator = started
        let run = try await started.netlease(["network", "show", "absent"])
        XCTAssertEqual(run.status, 1)
        XCTAssertEqual(run.stderr, "error: unknown-network: no network named 'absent'\n")
    }

    func testARefusedCommandLineIsAUsageError() async throws {
        let run = try await BuiltExecutable.run("netlease", ["lease", "release", "--network", "n", "--json"])
        XCTAssertEqual(run.status, 64)
        let error = try XCTUnwrap((try run.stderrJSON() as? [String: Any])?["error"] as? [String: Any])
        XCTAssertEqual(error["code"] as? String, "usage")
        XCTAssertEqual(error["message"] as? String, "give exactly one of --owner or --address")
    }

    func testAnUnreachableCoordinatorIsUnavailable() async throws {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        let run = try await BuiltExecutable.run("netlease", ["hosts", "--json", "--coordinator", "127.0.0.1:1"])
        XCTAssertEqual(run.status, 1)
        let error = try XCTUnwrap((try run.stderrJSON() as? [String: Any])?["error"] as? [String: Any])
        XCTAssertEqual(error["code"] as? String, "unavailable")
    }

    func testHelpWithJSONIsStillHelp() async throws {
        let run = try await BuiltExecutable.run("netlease", ["stats", "--help", "--json"])
        XCTAssertEqual(run.status, 0)
        XCTAssertTrue(run.stdout.contains("USAGE: netlease stats"), run.stdout)
    }

    func testSuccessfulResultsOfTheFormerlyTextOnlyCommands() async throws {
        let started = try await CLICoordinator.start()
        coordinator = started
        let created = try await started.netlease(["network", "create", "n", "--subnet", "10.1.0.0/24"])
        XCTAssertEqual(created.status, 0, created.stderr)
        let reserved = try await started.netlease(["lease", "reserve", "--network", "n", "--address", "10.1.0.5"])
        XCTAssertEqual(reserved.status, 0, reserved.stderr)
        let unreserved = try await started.netlease(
            ["lease", "unreserve", "--network", "n", "--address", "10.1.0.5", "--json"])
        XCTAssertEqual(
            try unreserved.stdoutJSON() as? [String: String],
            ["network": "n", "unreserved": "10.1.0.5"]
        )
        let deleted = try await started.netlease(["network", "delete", "n", "--json"])
        XCTAssertEqual(try deleted.stdoutJSON() as? [String: String], ["deleted": "n"])
        let removed = try await started.netlease(["host", "remove", "ghost", "--json"])
        XCTAssertEqual(removed.status, 1)
        XCTAssertEqual(
            ((try removed.stderrJSON() as? [String: Any])?["error"] as? [String: Any])?["code"] as? String,
            "not-found"
        )
    }
}
