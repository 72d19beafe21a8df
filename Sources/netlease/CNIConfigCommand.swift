import ArgumentParser
import Foundation
import NetleaseCNI
import NetleaseCore

extension Netlease {
    struct CNIConfigCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cni-config",
            abstract: "Print the CNI network configuration list (conflist) for a netlease network on this host.",
            discussion: """
                Asks this host's agent (--socket) for the network's bridge and the bridge's MTU and prints a \
                conflist: the 'bridge' plugin on the agent's bridge (isGateway false: the bridge already has this \
                host's address), MTU the bridge's, IPAM type netlease-cni with this socket and the agent's state \
                directory, and a default route \
                via the bridge address. Save it as e.g. /etc/cni/net.d/50-NAME.conflist for podman, containerd or \
                Kubernetes; the runtime's network name is NAME. Prints JSON whatever --json; --json reports errors \
                as JSON too.
                """
        )

        @OptionGroup var agent: AgentSocketOptions
        @Argument(help: "Network name.") var name: String
        @Option(
            name: .customLong("cni-version"),
            help: ArgumentHelp(
                "CNI version of the conflist: what the runtime and the bridge plugin speak (1.1.0 adds GC, STATUS).",
                valueName: "version"
            )
        )
        var cniVersion = CNIConflist.defaultVersion
        @Flag(help: "Report errors as JSON.") var json = false

        func validate() throws {
            guard CNIPlugin.supportedVersions.contains(cniVersion) else {
                throw ValidationError(
                    "--cni-version \(cniVersion) is not one netlease-cni speaks: "
                        + CNIPlugin.supportedVersions.joined(separator: ", ")
                )
            }
        }

        func run() async throws {
            try await reportingErrors(json: json) {
                let facts = try await agent.networkFacts(name)
                let socket = URL(fileURLWithPath: agent.socket).standardizedFileURL.path
                FileHandle.standardOutput.write(
                    CNIConflist.render(facts: facts, socket: socket, cniVersion: cniVersion)
                )
            }
        }
    }
}
