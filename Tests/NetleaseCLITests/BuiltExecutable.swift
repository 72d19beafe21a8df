import Foundation
import HostNetwork
import NetleaseCore
import NetleaseTesting
import XCTest

extension ExecutableRun {
    /// stdout parsed as JSON.
    func stdoutJSON() throws -> Any {
        try JSONSerialization.jsonObject(with: Data(stdout.utf8), options: [.fragmentsAllowed])
    }

    /// stderr parsed as JSON (with `--json`, failures are reported there).
    func stderrJSON() throws -> Any {
        try JSONSerialization.jsonObject(with: Data(stderr.utf8))
    }
}

/// The package's executables as users run them: a child process with a clean environment.
enum BuiltExecutable {
    /// The path of `name`; a test skips when it was not built (fails under CI's NETLEASE_REQUIRE_NETNS=1).
    static func path(_ name: String = "netlease") throws -> String {
        do { return try Executables.path(name) } catch {
            if ProcessInfo.processInfo.environment["NETLEASE_REQUIRE_NETNS"] == "1" { throw error }
            throw XCTSkip("\(error)")
        }
    }

    /// This process's environment without what would change the executable's behaviour behind a test's back: the
    /// netlease variables (coordinator, secret, TLS) and the service manager's (journal stream, notify socket).
    static func cleanEnvironment(adding extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !key.hasPrefix("NETLEASE_")
                && !["JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]
                    .contains(key)
        }
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// Runs `name` with `arguments` to completion on a thread of its own (the run blocks), killing it after
    /// `timeout`.
    static func run(
        _ name: String = "netlease",
        _ arguments: [String],
        environment: [String: String] = [:],
        timeout: Duration = .seconds(60)
    ) async throws -> ExecutableRun {
        let executable = try path(name)
        let environment = cleanEnvironment(adding: environment)
        let output = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<ChildProcess.Output, any Error>) in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result {
                        try ChildProcess.run(
                            executable: executable,
                            arguments: arguments,
                            environment: environment,
                            timeout: timeout
                        )
                    }
                )
            }
        }
        if output.timedOut { throw NetleaseError(.unavailable, "\(name) \(arguments) did not finish in \(timeout)") }
        return ExecutableRun(
            stdout: String(decoding: output.stdout, as: UTF8.self),
            stderr: String(decoding: output.stderr, as: UTF8.self),
            status: output.termination.shellStatus
        )
    }
}

/// An in-process coordinator and a secret file for the built CLI to authenticate with.
final class CLICoordinator: @unchecked Sendable {
    // @unchecked: set up in `start`, then only read.
    let harness: CoordinatorHarness
    let secretFile: String

    private init(harness: CoordinatorHarness, secretFile: String) {
        self.harness = harness
        self.secretFile = secretFile
    }

    static func start() async throws -> CLICoordinator {
        let harness = try await CoordinatorHarness.start()
        let secretFile = harness.directory.appendingPathComponent("admin-secret").path
        try XCTUnwrap(harness.secret?.text).write(toFile: secretFile, atomically: true, encoding: .utf8)
        // The CLI refuses a secret file others may read.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretFile)
        return CLICoordinator(harness: harness, secretFile: secretFile)
    }

    /// The options that point an admin command at this coordinator.
    var options: [String] { ["--coordinator", harness.endpoint.description, "--secret-file", secretFile] }

    /// Runs `netlease <arguments> <options>`.
    func netlease(_ arguments: [String]) async throws -> ExecutableRun {
        try await BuiltExecutable.run("netlease", arguments + options)
    }

    func stop() async {
        await harness.stop()
    }
}
