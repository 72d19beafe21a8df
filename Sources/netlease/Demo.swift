import ArgumentParser
import Foundation
import NetleaseLab

extension Netlease {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a working cluster on this machine (as root) and show containers pinging across hosts.",
            discussion: """
                Builds N hosts as network namespaces joined by an underlay bridge, starts a coordinator and one agent \
                per host (each builds its bridge and VXLAN mesh), attaches containers (namespaces) through the \
                agents, pings every container from every other, prints the lease table, and removes everything \
                unless --keep. Only addresses inside the demo's own namespaces are used.

                Needs root and iproute2 (and nsenter from util-linux), nothing else: pings are ICMP echo sent by \
                netlease itself. It first checks the kernel (network namespaces, veth, bridge, VXLAN, raw sockets) \
                and names every missing package, module or capability before it builds anything.
                """
        )

        @Option(help: "Number of hosts (2-16).") var hosts = 2
        @Option(help: "Containers per host (1-16).") var containers = 2
        @Flag(help: "Leave the namespaces and processes running; prints how to remove them.") var keep = false
        @Flag(help: "Print what was built and the ping results as JSON (progress goes to stderr).") var json = false

        func validate() throws {
            guard (2...16).contains(hosts) else { throw ValidationError("--hosts must be between 2 and 16") }
            guard (1...16).contains(containers) else { throw ValidationError("--containers must be between 1 and 16") }
        }

        func run() async throws {
            try await reportingErrors(json: json) {
                let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
                let progress = json ? FileHandle.standardError : FileHandle.standardOutput
                let report = try await LabDemo(
                    hosts: hosts,
                    containers: containers,
                    keep: keep,
                    binary: binary,
                    tables: !json
                ) { text in
                    progress.write(Data("demo: \(text)\n".utf8))
                }.run()
                if json { try printJSON(report) }
            }
        }
    }
}
