import Foundation
import HostNetwork
import XCTest

@testable import netlease

/// The systemd units in deploy/: systemd accepts them, they run the agent without a shell, and what they run is a
/// command line the executable accepts.
final class DeployUnitTests: XCTestCase {
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy")
    static let units = ["netlease-coordinator.service", "netlease-agent.service"]

    private func unit(_ name: String) throws -> String {
        try String(contentsOf: Self.deploy.appendingPathComponent(name), encoding: .utf8)
    }

    /// The values of `key` in `text`, continuation lines joined.
    private func values(_ key: String, in text: String) -> [String] {
        text.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n")
            .filter { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    /// `systemd-analyze verify` on copies of both units whose ExecStart names the built executable (verify insists
    /// the program exists). It exits 0 even for unknown keys or bad values, so any line it prints about the units is
    /// a failure too.
    func testSystemdAcceptsBothUnits() async throws {
        guard
            let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            let message = "systemd-analyze is missing (Debian package systemd)"
            if ProcessInfo.processInfo.environment["NETLEASE_REQUIRE_NETNS"] == "1" { return XCTFail(message) }
            throw XCTSkip(message)
        }
        let binary = try BuiltExecutable.path()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("units-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for name in Self.units {
            let text = try unit(name).replacingOccurrences(of: "/usr/local/bin/netlease", with: binary)
            let path = directory.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            paths.append(path)
        }
        let arguments = ["verify", "--man=no"] + paths
        let output = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result {
                        try ChildProcess.run(
                            executable: analyze,
                            arguments: arguments,
                            timeout: .seconds(60)
                        )
                    }
                )
            }
        }
        let text = String(decoding: output.stdout + output.stderr, as: UTF8.self)
        XCTAssertEqual(output.termination, .exited(0), text)
        let aboutUnits = text.split(separator: "\n").filter { line in
            line.contains(directory.path) || Self.units.contains { line.contains($0) }
        }
        XCTAssertEqual(aboutUnits, [], text)
    }

    func testBothAreNotifyServicesWithAWatchdog() throws {
        for name in Self.units {
            let text = try unit(name)
            XCTAssertEqual(values("Type", in: text), ["notify"], name)
            XCTAssertEqual(values("WatchdogSec", in: text).count, 1, name)
        }
        let agent = try unit("netlease-agent.service")
        XCTAssertTrue(values("Before", in: agent).contains("docker.service containerd.service"))
    }

    /// The agent's ExecStart runs the executable directly (no /bin/sh wrapper), and it is a command line the agent
    /// accepts with the example settings file.
    func testTheAgentUnitRunsTheAgentDirectlyWithItsSettingsFile() throws {
        let execStart = try XCTUnwrap(values("ExecStart", in: try unit("netlease-agent.service")).first)
        var words = execStart.split(separator: " ").map(String.init)
        XCTAssertEqual(words.first, "/usr/local/bin/netlease")
        XCTAssertFalse(execStart.contains("/bin/sh"))
        XCTAssertEqual(words.last, "$NETLEASE_AGENT_ARGS")
        words = Array(words.dropFirst().dropLast()).map {
            $0 == "/etc/netlease/agent.env" ? Self.deploy.appendingPathComponent("agent.env.example").path : $0
        }
        let command = try parse(words, as: Netlease.AgentCommand.self)
        XCTAssertEqual(try command.settings().networks, ["prod"])
        XCTAssertEqual(command.socket, "/run/netlease/agent.sock")
        XCTAssertEqual(command.stateDir, "/var/lib/netlease-agent")
        // The further options the example file suggests are accepted too.
        let suggested = ["--socket-group", "netlease", "--log-level", "info", "--log-format", "journal"]
        XCTAssertNoThrow(try parse(words + suggested, as: Netlease.AgentCommand.self))
    }

    func testTheCoordinatorUnitRunsACommandLineTheCoordinatorAccepts() throws {
        let execStart = try XCTUnwrap(values("ExecStart", in: try unit("netlease-coordinator.service")).first)
        let words = execStart.split(separator: " ").map(String.init).dropFirst()
            .filter { $0 != "$NETLEASE_COORDINATOR_ARGS" }
            .map { $0 == "${NETLEASE_LISTEN}" ? "0.0.0.0:7420" : $0 }
        let command = try parse(Array(words), as: Netlease.Coordinator.self)
        XCTAssertEqual(command.data, "/var/lib/netlease")
    }
}
