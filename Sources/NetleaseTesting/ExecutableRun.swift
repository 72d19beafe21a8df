import Foundation
import HostNetwork

/// One run of an executable the way a user or a runtime starts it: arguments, environment, working directory and
/// stdin; for tests that hold the command line and the CNI plugin to their contracts (output, stderr, exit status).
public struct ExecutableRun: Sendable {
    public var stdout: String
    public var stderr: String
    /// The exit status, or 128 + the signal that ended the process.
    public var status: Int32

    public init(stdout: String, stderr: String, status: Int32) {
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
    }

    /// Runs `executable` with `arguments` to completion (killed after `timeout`).
    /// - Parameters:
    ///   - environment: variables added to this process's environment, from which every `NETLEASE_*` and `CNI_*`
    ///     variable is removed first, so a developer's shell never changes what a test sees.
    ///   - directory: the working directory (default: this process's).
    ///   - input: what the process reads on stdin (default: nothing, /dev/null).
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        directory: String? = nil,
        input: Data? = nil,
        timeout: Duration = .seconds(60)
    ) throws -> ExecutableRun {
        var variables = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("NETLEASE_") && !$0.key.hasPrefix("CNI_")
        }
        variables.merge(environment) { _, new in new }
        // ChildProcess has no working directory or stdin data of its own: a shell sets both, then execs.
        var inputFile = "/dev/null"
        if let input {
            inputFile =
                FileManager.default.temporaryDirectory
                .appendingPathComponent("netlease-stdin-\(UUID().uuidString)").path
            guard FileManager.default.createFile(atPath: inputFile, contents: input) else {
                throw HostNetworkError(.commandFailed, "cannot write \(inputFile)")
            }
        }
        defer { if input != nil { try? FileManager.default.removeItem(atPath: inputFile) } }
        let script = #"cd "$1" || exit 125; input=$2; shift 2; exec "$@" < "$input""#
        let output = try ChildProcess.run(
            executable: "/bin/sh",
            arguments: [
                "-c", script, "sh", directory ?? FileManager.default.currentDirectoryPath, inputFile,
                executable,
            ] + arguments,
            environment: variables,
            timeout: timeout
        )
        if output.timedOut {
            throw HostNetworkError(.commandFailed, "\(executable) \(arguments) did not finish within \(timeout)")
        }
        return ExecutableRun(
            stdout: String(decoding: output.stdout, as: UTF8.self),
            stderr: String(decoding: output.stderr, as: UTF8.self),
            status: output.termination.shellStatus
        )
    }
}
