import HostNetwork

/// Runs every command of another runner inside a named network namespace (`ip netns exec NAME …`), so a real
/// `LinuxHostNetwork` can act as one "host" of a test made of namespaces.
public struct NetnsCommandRunner: CommandRunner {
    /// The namespace's name under /var/run/netns.
    public var namespace: String
    /// Environment for the command, passed as `env K=V …` after `ip netns exec NAME` (e.g. `OVS_RUNDIR`).
    public var environment: [String: String]
    /// Runs the wrapped commands.
    public var base: any CommandRunner

    public init(namespace: String, environment: [String: String] = [:], base: any CommandRunner) {
        self.namespace = namespace
        self.environment = environment
        self.base = base
    }

    public func run(_ argv: [String]) async throws -> CommandResult {
        var wrapped = ["ip", "netns", "exec", namespace]
        if !environment.isEmpty {
            wrapped += ["env"] + environment.keys.sorted().map { "\($0)=\(environment[$0]!)" }
        }
        do {
            return try await base.run(wrapped + argv)
        } catch var error as HostNetworkError where error.code == .commandFailed {
            // Report the command as the caller wrote it; the namespace wrapper is test scaffolding.
            error = HostNetworkError.commandFailed(argv, status: error.status ?? -1, stderr: error.stderr)
            error.message += " (in netns \(namespace))"
            throw error
        }
    }
}
