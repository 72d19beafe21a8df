import Foundation
import Logging

/// Runs commands as child processes with Foundation's `Process`.
///
/// Design notes:
/// - The tool is looked up once per call in PATH plus the sbin directories (`ip` lives in /usr/sbin, which a
///   non-login PATH may lack) and started by absolute path, so a missing tool is a clear `toolNotFound` error and
///   never "launch path not accessible".
/// - stdout and stderr are drained concurrently until EOF before waiting for exit; reading one pipe after the other
///   deadlocks when the child fills the second pipe's buffer.
/// - The child is spawned and awaited on a dedicated thread: never on Swift's cooperative pool, which must not
///   block, and not on Dispatch's global queues, whose few threads (about one per core) it could occupy until the
///   timeout timer itself cannot run. It also gives the child a clean signal mask: a child inherits the spawning
///   thread's mask, and Swift concurrency threads block nearly every signal (measured: spawned from a task, a
///   child has SIGTERM blocked; from a Foundation `Thread`, nothing blocked).
/// - A command still running after `timeout` is killed and reported as failed (status 128 + SIGKILL), so a hung
///   tool (e.g. `ovs-vsctl` waiting for a daemon) cannot hang the agent.
/// - Completion is detected by EOF on the output pipes (and Foundation's own child socket): a command that leaves
///   a daemon behind holding inherited descriptors would block the call. netlease runs no such command.
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
            .toolNotFound, "'\(tool)' was not found in \(searchPath.joined(separator: ":")); is it installed?",
            command: [tool])
    }

    public func run(_ argv: [String]) async throws -> CommandResult {
        guard let tool = argv.first else {
            throw HostNetworkError(.invalidConfiguration, "empty command")
        }
        let executable = try resolve(tool)
        let line = ShellQuote.join(argv)
        logger.debug("run", metadata: ["command": "\(line)"])
        let timeout = self.timeout
        let result = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<CommandResult, any Error>) in
            let thread = Thread {
                continuation.resume(with: Result {
                    try Self.runBlocking(executable: executable, arguments: Array(argv.dropFirst()), timeout: timeout)
                })
            }
            thread.name = "netlease-command"
            thread.start()
        }
        logger.debug("exit", metadata: ["command": "\(line)", "status": "\(result.status)"])
        guard result.status == 0 else {
            throw HostNetworkError.commandFailed(argv, status: result.status, stderr: result.stderr)
        }
        return result
    }

    private static func runBlocking(executable: String, arguments: [String], timeout: Duration) throws
        -> CommandResult
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        do {
            try process.run()
        } catch {
            throw HostNetworkError(
                .toolNotFound, "cannot start '\(executable)': \(error)", command: [executable] + arguments)
        }
        let (seconds, attoseconds) = timeout.components
        // SIGKILL, not Process.terminate()'s SIGTERM: a hung command may block or ignore SIGTERM (as every child of
        // a Swift concurrency thread does, having inherited its signal mask), and the deadline must hold.
        let pid = process.processIdentifier
        let timer = DispatchWorkItem { if process.isRunning { kill(pid, SIGKILL) } }
        DispatchQueue.global().asyncAfter(
            deadline: .now() + .milliseconds(Int(seconds * 1000 + attoseconds / 1_000_000_000_000_000)),
            execute: timer)
        let stderrDrain = PipeDrain()
        let drained = DispatchSemaphore(value: 0)
        let drainer = Thread {
            stderrDrain.data = stderrPipe.fileHandleForReading.readDataToEndOfFile()
            drained.signal()
        }
        drainer.name = "netlease-command-stderr"
        drainer.start()
        let output = stdoutPipe.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        timer.cancel()
        let status: Int32 =
            process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return CommandResult(
            stdout: String(decoding: output, as: UTF8.self),
            stderr: String(decoding: stderrDrain.data, as: UTF8.self),
            status: status)
    }
}

/// Holds what a background read of a pipe produced.
// @unchecked Sendable: `data` is written once by the draining thread before `drained.signal()` and read only after
// `drained.wait()`, which orders the write before the read.
private final class PipeDrain: @unchecked Sendable {
    var data = Data()
}
