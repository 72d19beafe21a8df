import ArgumentParser
import NetleaseAgent
import NetleaseCNI
import NetleaseCore

extension Netlease {
    struct DockerNetwork: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "docker-network",
            abstract: "Print the 'docker network create' line that puts a Docker network on a netlease network.",
            discussion: """
                Asks this host's agent (--socket) for the network's subnet, bridge and the bridge's MTU, and prints \
                the line for this host. Run it on every host whose agent serves the network and was started with \
                --docker-plugin. Docker's bridge driver then adopts the agent's bridge (its address is the \
                containers' gateway), gives containers the bridge's MTU, and asks the agent, as IPAM driver \
                'netlease', for every container address.
                """
        )

        @OptionGroup var agent: AgentSocketOptions
        @Argument(help: "Network name.") var name: String
        @Flag(help: "Report errors as JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                let facts = try await agent.networkFacts(name)
                print(
                    DockerIPAMPlugin.createNetworkCommand(
                        network: facts.network,
                        subnet: facts.subnet,
                        bridge: facts.bridge,
                        mtu: facts.mtu
                    )
                )
            }
        }
    }
}

extension Netlease.AgentSocketOptions {
    /// The agent's NETWORK answer: what this host serves of network `name`. An agent that does not answer is
    /// `unavailable`.
    func networkFacts(_ name: String) async throws -> CNINetworkFacts {
        do {
            return try await SocketCNIAgent(socket: socket).network(name)
        } catch let error as CNIAgentUnreachable {
            throw NetleaseError(.unavailable, "\(error.description) (\(error.reason)); is the agent running?")
        }
    }
}
