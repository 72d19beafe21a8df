import ArgumentParser

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
            'error: <code>: <message>' on stderr.
            """,
        version: NetleaseVersion.current,
        subcommands: [
            Coordinator.self, AgentCommand.self, NetworkCommand.self, LeaseCommand.self, Leases.self, Hosts.self,
            HostCommand.self, Stats.self, Attach.self, Detach.self, Doctor.self, DockerNetwork.self, Backup.self,
            Demo.self, Bench.self,
        ]
    )
}

enum NetleaseVersion {
    static let current = "0.1.0"
}
