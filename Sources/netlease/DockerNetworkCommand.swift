import ArgumentParser
import NetleaseAgent
import NetleaseClient

extension Netlease {
    struct DockerNetwork: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "docker-network",
            abstract: "Print the 'docker network create' line that puts a Docker network on a netlease network.",
            discussion: """
                Run the printed line on every host whose agent serves the network and was started with \
                --docker-plugin. Docker's bridge driver then adopts the agent's bridge (its address is the \
                containers' gateway) and asks the agent, as IPAM driver 'netlease', for every container address.
                """
        )

        @OptionGroup var client: ClientOptions
        @Argument(help: "Network name.") var name: String

        func run() async throws {
            try await reportingErrors {
                let spec = try await client.withConnection { try await $0.network(name) }.spec
                print(
                    DockerIPAMPlugin.createNetworkCommand(
                        network: spec.name,
                        subnet: spec.subnet,
                        bridge: spec.bridge
                    )
                )
            }
        }
    }
}
