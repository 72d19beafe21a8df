import ArgumentParser
import Foundation
import HostNetwork
import NetleaseCore

extension Netlease {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a working cluster on this machine (as root) and show containers pinging across hosts.",
            discussion: """
                Builds N hosts as network namespaces joined by an underlay bridge, starts a coordinator and one agent \
                per host (each builds its bridge and VXLAN mesh), attaches containers (namespaces) through the \
                agents, pings every container from every other, prints the lease table, and removes everything \
                unless --keep. Only addresses inside the demo's own namespaces are used.
                """)

        @Option(help: "Number of hosts (2-16).") var hosts = 2
        @Option(help: "Containers per host (1-16).") var containers = 2
        @Flag(help: "Leave the namespaces and processes running; prints how to remove them.") var keep = false

        func validate() throws {
            guard (2...16).contains(hosts) else { throw ValidationError("--hosts must be between 2 and 16") }
            guard (1...16).contains(containers) else { throw ValidationError("--containers must be between 1 and 16") }
        }

        func run() async throws {
            try await reportingErrors {
                if let problem = await NamespaceLab.capabilityProblem() {
                    throw NetleaseError(.unavailable, "the demo \(problem); run it as root: sudo netlease demo")
                }
                let binary = try executablePath()
                let lab = try NamespaceLab()
                let cluster = LabCluster(lab: lab, binary: binary)
                var failed = 0
                do {
                    say("underlay 10.x in namespace \(lab.underlayNamespace); coordinator on \(cluster.coordinatorAddress)")
                    try await cluster.startCoordinator()
                    say("network \(cluster.network) \(cluster.subnet), vxlan")
                    for index in 1...hosts {
                        let created = ContinuousClock.now
                        try await lab.addHost(index)
                        let started = ContinuousClock.now
                        try await cluster.startAgent(index, createHost: false)
                        say("host\(index): namespace and underlay made in \(milliseconds(started - created)) ms; "
                            + "agent started, ready (bridge + mesh verified) in \(milliseconds(ContinuousClock.now - started)) ms")
                    }
                    var addresses: [(String, IPv4Address)] = []
                    for index in 1...hosts {
                        for number in 1...containers {
                            let namespace = cluster.containerNamespace(host: index, number)
                            try await lab.addNamespace(namespace)
                            let started = ContinuousClock.now
                            let address = try await cluster.attachContainer(host: index, number, createNamespace: false)
                            addresses.append((namespace, address))
                            say("host\(index): container \(number) -> \(address) "
                                + "(attach: \(milliseconds(ContinuousClock.now - started)) ms)")
                        }
                    }
                    say("pinging every container from every other (\(addresses.count * (addresses.count - 1)) pings)")
                    for (from, fromAddress) in addresses {
                        var row: [String] = []
                        for (to, address) in addresses where to != from {
                            let ok = await lab.ping(from: from, to: address)
                            if !ok { failed += 1 }
                            row.append("\(address) \(ok ? "ok" : "FAIL")")
                        }
                        say("  from \(fromAddress): " + row.joined(separator: ", "))
                    }
                    FileHandle.standardOutput.write(Data(try await cluster.admin(["leases", "--network", cluster.network]).utf8))
                    FileHandle.standardOutput.write(Data(try await cluster.admin(["hosts"]).utf8))
                } catch {
                    if !keep { await cluster.destroy() }
                    throw error
                }
                if keep {
                    say("kept: namespaces \(lab.createdNamespaces.joined(separator: " ")); files in \(lab.directory)")
                    say("remove with: for n in \(lab.createdNamespaces.joined(separator: " ")); do ip netns del $n; done; pkill -f \(lab.directory)")
                } else {
                    await cluster.destroy()
                    say("removed every namespace and process of the demo")
                }
                if failed > 0 { throw NetleaseError(.unavailable, "\(failed) ping(s) failed") }
                say("all containers reach each other across hosts, each with its own cluster-unique address")
            }
        }

        private func say(_ text: String) {
            FileHandle.standardOutput.write(Data("demo: \(text)\n".utf8))
        }

        private func milliseconds(_ duration: Duration) -> Int {
            Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        }

        private func executablePath() throws -> String {
            let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            return path
        }
    }
}
