import Foundation
import Logging

/// Runs commands as child processes (`ChildProcess`: posix_spawn, a clean signal mask, no inherited descriptors).
///
/// Design notes:
/// - The tool is looked up once per call in PATH plus the sbin directories (`ip` lives in /usr/sbin, which a
///   non-login PATH may lack) and started by absolute path, so a missing tool is a clear `toolNotFound` error and
///   never "launch path not accessible".
/// - stdout and stderr are drained concurrently until EOF before waiting for exit; reading one pipe after the other
///   deadlocks when the child fills the second pipe's buffer.
/// - The child is spawned and awaited on a dedicated thread: never on Swift's cooperative pool, which must not
///   block, and not on Dispatch's global queues, whose few threads (about one per core) it could occupy.
/// - A command still running after `timeout` is killed with its process group and reported as failed
///   (status 128 + SIGKILL), so a hung tool (e.g. `ovs-vsctl` waiting for a daemon) cannot hang the agent.
/// - Completion is detected by EOF on the output pipes: a command that leaves a daemon behind (in a session of its
///   own) holding them would run into the timeout. netlease runs no such command; the lab starts its Open vSwitch
///   daemons with output to files for this reason.
public struct ProcessCommandRunner: CommandRunner {
    /// Where each command and its exit status are logged, at debug level.
    public var logger: Logger
    /// Directories searched for a tool named without a slash, in order.
    public var searchPath: [String]
    /// Longest time a command may run.
    public var timeout: Duration

    /// Directories searched after PATH.
    public static let fallbackSearchPath = [
        "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
    ]

    /// - Parameters:
    ///   - logger: receives one debug line per command and one per exit.
    ///   - path: the PATH to search; defaults to this process's PATH.
    ///   - timeout: longest time a command may run before it is terminated.
    public init(
        logger: Logger = Logger(label: "netlease.hostnetwork.command"),
        path: String? = ProcessInfo.processInfo.environment["PATH"],
        timeout: Duration = .seconds(30)
    ) {
        self.logger = logger
        var directories = (path ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        for directory in Self.fallbackSearchPath where !directories.contains(directory) {
            directories.append(directory)
        }
        searchPath = directories
        self.timeout = timeout
    }

    /// The absolute path `tool` would be started from.
    public func resolve(_ tool: String) throws -> String {
        if tool.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                throw HostNetworkError(.toolNotFound, "'\(tool)' is not an executable file", command: [tool])
            }
            return tool
        }
        for directory in searchPath {
            let candidate = directory + "/" + tool
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw HostNetworkError(
            .toolNotFound,
            "'\(tool)' was not found in \(searchPath.joined(separator: ":")); is it installed?",
            command: [tool]
        )
    }

    public func run(_ argv: [String]) async throws -> CommandResult {
        guard let tool = argv.first else {
            throw HostNetworkError(.invalidConfiguration, "empty command")
        }
        let executable = try resolve(tool)
        let line = ShellQuote.join(argv)
        logger.debug("run", metadata: ["command": "\(line)"])
        let timeout = self.timeout
        let output = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<ChildProcess.Output, any Error>) in
            let thread = Thread {
                continuation.resume(
                    with: Result {
                        try ChildProcess.run(
                            executable: executable,
                            arguments: Array(argv.dropFirst()),
                            timeout: timeout
                        )
                    }
                )
            }
            thread.name = "netlease-command"
            thread.start()
        }
        let result = CommandResult(
            stdout: String(decoding: output.stdout, as: UTF8.self),
            stderr: String(decoding: output.stderr, as: UTF8.self),
            status: output.termination.shellStatus
        )
        logger.debug("exit", metadata: ["command": "\(line)", "status": "\(result.status)"])
        if output.timedOut {
            var error = HostNetworkError.commandFailed(argv, status: result.status, stderr: result.stderr)
            error.message = "`\(line)` did not finish within \(timeout) and was killed"
            throw error
        }
        guard result.status == 0 else {
            throw HostNetworkError.commandFailed(argv, status: result.status, stderr: result.stderr)
        }
        return result
    }
}
