import ArgumentParser
import Foundation
import NetleaseClient
import NetleaseCore

extension Netlease {
    struct NetworkCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "network",
            abstract: "Create, list, show and delete networks.",
            subcommands: [Create.self, List.self, Show.self, Delete.self]
        )
    }
}

extension Netlease.NetworkCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a network (one flat subnet across hosts).")

        @OptionGroup var client: ClientOptions
        @Argument(help: "Network name: letters, digits, '-', '_' or '.'.") var name: String
        @Option(help: ArgumentHelp("Subnet in CIDR form, e.g. 172.30.0.0/16 (/8 to /30).", valueName: "cidr"))
        var subnet: String
        @Option(help: "Tunnel kind: vxlan (default), gre or ovs-gre.") var tunnel = "vxlan"
        @Option(help: "VXLAN network identifier (default: the next free one).") var vni: UInt32?
        @Option(help: ArgumentHelp("Bridge interface name on every host (default nl-NAME).", valueName: "ifname"))
        var bridge: String?
        @Option(help: "MTU of the bridge and containers (default: underlay MTU minus tunnel overhead).") var mtu: Int?
        @Option(
            help: ArgumentHelp(
                "Seconds without heartbeat before a host's leases are reclaimed.",
                valueName: "seconds"
            )
        )
        var leaseTtl: Int = NetworkSpec.defaultLeaseTTL
        @Option(help: ArgumentHelp("Seconds a released address rests before reuse.", valueName: "seconds"))
        var cooldown: Int = NetworkSpec.defaultCooldown
        @Option(
            help: ArgumentHelp(
                "Addresses never to hand out: A.B.C.D, A-B range or CIDR (repeatable).",
                valueName: "range"
            )
        )
        var exclude: [String] = []
        @Flag(help: "Print the created network as JSON.") var json = false

        /// --subnet, --tunnel and --exclude as typed values. Checked in `validate()`: a value that cannot mean
        /// anything is a usage error, like every other bad option, and never reaches the coordinator.
        func parsed() throws -> (subnet: IPv4Subnet, tunnel: TunnelKind, excluded: [IPv4Range]) {
            guard let parsedSubnet = IPv4Subnet(subnet) else {
                throw ValidationError("--subnet '\(subnet)' is not a CIDR with host bits zero (like 172.30.0.0/16)")
            }
            guard let parsedTunnel = TunnelKind(rawValue: tunnel) else {
                throw ValidationError("--tunnel '\(tunnel)' must be vxlan, gre or ovs-gre")
            }
            let excluded = try exclude.map { text -> IPv4Range in
                guard let range = IPv4Range(text) else {
                    throw ValidationError("--exclude '\(text)' is not an address, A-B range or CIDR")
                }
                return range
            }
            return (parsedSubnet, parsedTunnel, excluded)
        }

        func validate() throws {
            _ = try parsed()
        }

        func run() async throws {
            try await reportingErrors(json: json) {
                let (subnet, tunnel, excluded) = try parsed()
                let spec = NetworkSpec(
                    name: name,
                    subnet: subnet,
                    tunnel: tunnel,
                    vni: vni ?? 0,
                    bridge: bridge ?? "",
                    mtu: mtu ?? 0,
                    leaseTTL: leaseTtl,
                    cooldown: cooldown,
                    excluded: excluded
                )
                let created = try await client.withConnection { try await $0.createNetwork(spec) }
                if json {
                    let counts = PoolCounts(usable: created.usableCount)
                    try printJSON(NetworkJSON(NetworkSummary(spec: created, counts: counts)))
                } else {
                    print(
                        "created network \(created.name) \(created.subnet) tunnel=\(created.tunnel.rawValue) "
                            + "vni=\(created.vni) bridge=\(created.bridge)"
                    )
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List networks with their address counts.")
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                let networks = try await client.withConnection { try await $0.networks() }
                if json { return try printJSON(networks.map(NetworkJSON.init)) }
                var table = TextTable(
                    "NAME",
                    "SUBNET",
                    "TUNNEL",
                    "VNI",
                    "BRIDGE",
                    "ACTIVE",
                    "RESERVED",
                    "CONFLICT",
                    "COOLDOWN",
                    "FREE"
                )
                for n in networks {
                    table.add([
                        n.spec.name, n.spec.subnet.description, n.spec.tunnel.rawValue, String(n.spec.vni),
                        n.spec.bridge, String(n.counts.active), String(n.counts.reserved),
                        String(n.counts.conflict), String(n.counts.cooldown), String(n.counts.free),
                    ])
                }
                print(table.rendered)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one network.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Network name.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                let n = try await client.withConnection { try await $0.network(name) }
                if json { return try printJSON(NetworkJSON(n)) }
                let s = n.spec
                let rows: [(String, String)] = [
                    ("name", s.name), ("subnet", s.subnet.description), ("tunnel", s.tunnel.rawValue),
                    ("vni", String(s.vni)), ("bridge", s.bridge), ("mtu", s.mtu == 0 ? "auto" : String(s.mtu)),
                    ("lease-ttl", "\(s.leaseTTL)s"), ("cooldown", "\(s.cooldown)s"),
                    ("exclude", s.excluded.isEmpty ? "-" : s.excluded.map(\.description).joined(separator: ",")),
                    ("created", TimeFormat.iso(s.created)), ("usable", String(n.counts.usable)),
                    ("active", String(n.counts.active)), ("reserved", String(n.counts.reserved)),
                    ("conflict", String(n.counts.conflict)), ("cooldown-now", String(n.counts.cooldown)),
                    ("free", String(n.counts.free)),
                ]
                var table = TextTable("FIELD", "VALUE")
                for (k, v) in rows { table.add([k, v]) }
                print(table.rendered)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a network (refused while containers hold addresses in it or hosts serve it)."
        )
        @OptionGroup var client: ClientOptions
        @Argument(help: "Network name.") var name: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                try await client.withConnection { try await $0.deleteNetwork(name) }
                if json { try printJSON(["deleted": name]) } else { print("deleted network \(name)") }
            }
        }
    }
}
