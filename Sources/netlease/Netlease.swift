import ArgumentParser
import NetleaseCore

@main
struct Netlease: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netlease",
        abstract: "Cluster-unique container addresses for multi-host overlay networks.",
        discussion: """
            One coordinator owns every address of every network in a durable store. An agent on each host builds \
            the bridge and tunnel mesh, then leases addresses to local containers. Admins manage networks, leases \
            and hosts with the commands below.

            Admin commands find the coordinator with --coordinator or NETLEASE_COORDINATOR (default \
            127.0.0.1:7420) and authenticate with the secret file given by --secret-file or NETLEASE_SECRET_FILE \
            (default ./netlease-data/cluster-secret when it exists). Failures exit non-zero and print \
            'error: <code>: <message>' on stderr; with --json, '{"error":{"code":…,"message":…}}' instead (a \
            refused command line has code 'usage' and exit status 64).
            """,
        version: NetleaseVersion.current,
        subcommands: [
            Coordinator.self, AgentCommand.self, NetworkCommand.self, LeaseCommand.self, Leases.self, Hosts.self,
            HostCommand.self, Stats.self, Attach.self, Detach.self, Doctor.self, DockerNetwork.self,
            CNIConfigCommand.self, Backup.self, Migrate.self, TLS.self, Demo.self, Bench.self,
        ]
    )

    /// ArgumentParser's own entry point, except that with `--json` a refused command line is reported as JSON on
    /// stderr like every other failure. Help and `--version` are not failures and print as usual.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let status = exitCode(for: error)
            // An ExitCode from a command's run has been reported already (`reportingErrors`).
            if !status.isSuccess, !(error is ExitCode),
                ErrorReport.jsonRequested(CommandLine.arguments.dropFirst())
            {
                ErrorReport.write(code: ErrorReport.usageCode, message: message(for: error), style: .json)
                exit(withError: ExitCode(status.rawValue))
            }
            exit(withError: error)
        }
    }
}
