/// What a finished command printed and how it exited.
public struct CommandResult: Sendable, Equatable {
    public var stdout: String
    public var stderr: String
    /// Exit status; 128 + n when the command was killed by signal n.
    public var status: Int32

    public init(stdout: String = "", stderr: String = "", status: Int32 = 0) {
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
    }

    /// Exit status 0 and no output.
    public static let success = CommandResult()
}

/// Runs a command given as an argument vector (never through a shell). The only way HostNetwork starts processes,
/// so tests replace it with `RecordingCommandRunner` and assert the exact commands.
public protocol CommandRunner: Sendable {
    /// Runs `argv` (tool name first) to completion. Throws `HostNetworkError` with code `commandFailed`, carrying the
    /// command line, exit status and stderr, when the command exits non-zero.
    func run(_ argv: [String]) async throws -> CommandResult
}
