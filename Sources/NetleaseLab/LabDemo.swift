import Foundation
import NetleaseCore

/// `netlease demo`: a working cluster on this one machine. Builds N hosts as network namespaces joined by an
/// underlay bridge, starts a coordinator and one agent per host (each builds its bridge and VXLAN mesh), attaches
/// containers (namespaces) through the agents, pings every container from every other, prints the lease table, and
/// removes everything unless `keep`. Only addresses inside the demo's own namespaces are used.
public struct LabDemo: Sendable {
    public var hosts: Int
    public var containers: Int
    public var keep: Bool
    /// The `netlease` executable the lab runs as coordinator, agents and admin CLI.
    public var binary: String
    /// Print the lease and host tables on stdout (off when the caller prints the report as JSON instead).
    public var tables: Bool
    /// Where progress lines go.
    public var say: @Sendable (String) -> Void

    /// What the demo built and found, for `netlease demo --json`.
    public struct Report: Sendable, Encodable {
        public struct Container: Sendable, Encodable {
            public var host: String
            public var namespace: String
            public var address: String
        }

        public var hosts: [String] = []
        public var containers: [Container] = []
        public var pings = 0
        public var failedPings = 0
        public var kept = false

        enum CodingKeys: String, CodingKey {
            case hosts, containers, pings, kept
            case failedPings = "failed_pings"
        }
    }

    public init(
        hosts: Int,
        containers: Int,
        keep: Bool,
        binary: String,
        tables: Bool = true,
        say: @escaping @Sendable (String) -> Void
    ) {
        self.hosts = hosts
        self.containers = containers
        self.keep = keep
        self.binary = binary
        self.tables = tables
        self.say = say
    }

    /// Runs the demo; throws `unavailable` when it cannot run here (naming every missing piece) or when a ping
    /// failed.
    @discardableResult
    public func run() async throws -> Report {
        let problems = await LabPrerequisites().problems()
        guard problems.isEmpty else {
            throw NetleaseError(
                .unavailable,
                "the demo cannot run here:\n  - " + problems.joined(separator: "\n  - ")
            )
        }
        say("checked: root, iproute2, util-linux; the kernel makes namespaces, veth pairs, bridges, VXLAN; raw ICMP")
        let lab = try NamespaceLab()
        let cluster = LabCluster(lab: lab, binary: binary)
        var failed = 0
        var report = Report()
        do {
            say("underlay 10.x in namespace \(lab.underlayNamespace); coordinator on \(cluster.coordinatorAddress)")
            try await cluster.startCoordinator()
            say("network \(cluster.network) \(cluster.subnet), vxlan")
            for index in 1...hosts {
                let created = ContinuousClock.now
                try await lab.addHost(index)
                let started = ContinuousClock.now
                try await cluster.startAgent(index, createHost: false)
                report.hosts.append("host\(index)")
                say(
                    "host\(index): namespace and underlay made in \(Self.milliseconds(started - created)) ms; "
                        + "credential issued (acts only as host\(index)), agent started, ready (bridge + mesh verified) in "
                        + "\(Self.milliseconds(ContinuousClock.now - started)) ms"
                )
            }
            var addresses: [(String, IPv4Address)] = []
            for index in 1...hosts {
                for number in 1...containers {
                    let namespace = cluster.containerNamespace(host: index, number)
                    try await lab.addNamespace(namespace)
                    let started = ContinuousClock.now
                    let address = try await cluster.attachContainer(host: index, number, createNamespace: false)
                    addresses.append((namespace, address))
                    report.containers.append(
                        .init(
                            host: "host\(index)",
                            namespace: namespace,
                            address: address.description
                        )
                    )
                    say(
                        "host\(index): container \(number) -> \(address) "
                            + "(attach: \(Self.milliseconds(ContinuousClock.now - started)) ms)"
                    )
                }
            }
            say("pinging every container from every other (\(addresses.count * (addresses.count - 1)) pings)")
            for (from, fromAddress) in addresses {
                var row: [String] = []
                for (to, address) in addresses where to != from {
                    // A first echo over a fresh path may be lost while ARP resolves: retry for a few seconds.
                    let ok = await lab.ping(from: from, to: address, within: .seconds(5))
                    report.pings += 1
                    if !ok { failed += 1 }
                    row.append("\(address) \(ok ? "ok" : "FAIL")")
                }
                say("  from \(fromAddress): " + row.joined(separator: ", "))
            }
            if tables {
                let leases = try await cluster.admin(["leases", "--network", cluster.network])
                FileHandle.standardOutput.write(Data(leases.utf8))
                FileHandle.standardOutput.write(Data(try await cluster.admin(["hosts"]).utf8))
            }
        } catch {
            if keep { lab.keep() } else { await cluster.destroy() }
            throw error
        }
        if keep {
            lab.keep()
            say("kept: namespaces \(lab.createdNamespaces.joined(separator: " ")); files in \(lab.directory)")
            say(
                "remove with: for n in \(lab.createdNamespaces.joined(separator: " ")); do ip netns del $n; done; "
                    + "pkill -f \(lab.directory)"
            )
        } else {
            await cluster.destroy()
            say("removed every namespace and process of the demo")
        }
        if failed > 0 { throw NetleaseError(.unavailable, "\(failed) ping(s) failed") }
        say("all containers reach each other across hosts, each with its own cluster-unique address")
        report.failedPings = failed
        report.kept = keep
        return report
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
