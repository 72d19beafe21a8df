import Foundation
import NetleaseCore

/// The one error type of HostNetwork: a stable code, a message for people, and for a failed command the command
/// line, its exit status and what it wrote to stderr.
public struct HostNetworkError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable, machine-readable reasons.
    public enum Code: String, Sendable, CaseIterable {
        /// A command exited non-zero (or was killed).
        case commandFailed = "command-failed"
        /// A tool (`ip`, `bridge`, `ovs-vsctl`, `nsenter`) is not installed or not on PATH.
        case toolNotFound = "tool-not-found"
        /// The kernel lacks a device type or module the network needs (e.g. gretap).
        case missingKernelSupport = "missing-kernel-support"
        /// A command's output could not be understood.
        case unexpectedOutput = "unexpected-output"
        /// The request itself is unusable (bad interface name, bad namespace path, unknown bridge …).
        case invalidConfiguration = "invalid-configuration"
        /// Something on the host is in the way (a link with our name that is of another kind).
        case conflict = "conflict"
        /// A socket call of the ARP prober failed.
        case socket = "socket"
        /// The namespace at a container's path is not the one the container was attached to: the container is
        /// gone and something else has taken the path.
        case namespaceReplaced = "namespace-replaced"
    }

    public var code: Code
    public var message: String
    /// The failed command's argument vector; empty when no command was involved.
    public var command: [String]
    /// Exit status of the failed command (128 + signal number when it was killed by a signal).
    public var status: Int32?
    /// What the failed command wrote to stderr, trimmed.
    public var stderr: String

    public init(_ code: Code, _ message: String, command: [String] = [], status: Int32? = nil, stderr: String = "") {
        self.code = code
        self.message = message
        self.command = command
        self.status = status
        self.stderr = stderr
    }

    /// A command exited with a non-zero status.
    public static func commandFailed(_ argv: [String], status: Int32, stderr: String) -> HostNetworkError {
        let trimmed = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let said = trimmed.isEmpty ? "(no output on stderr)" : trimmed
        return HostNetworkError(
            .commandFailed,
            "`\(ShellQuote.join(argv))` exited with status \(status): \(said)",
            command: argv,
            status: status,
            stderr: trimmed
        )
    }

    /// The command line of the failed command, quoted for a shell.
    public var commandLine: String { ShellQuote.join(command) }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The domain error the agent reports when the host network cannot be configured.
    public var netleaseError: NetleaseError {
        NetleaseError(.unavailable, "host network: \(message)", cause: code.rawValue)
    }
}
