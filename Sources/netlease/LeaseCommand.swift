import ArgumentParser
import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseWire

extension Netlease {
    struct LeaseCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lease",
            abstract: "Acquire, release, reserve and unreserve addresses by hand.",
            subcommands: [Acquire.self, Release.self, Reserve.self, Unreserve.self]
        )
    }

    struct Leases: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List leases (active, reserved and conflict; cooldown with --state cooldown)."
        )
        @OptionGroup var client: ClientOptions
        @Option(help: "Only this network.") var network: String?
        @Option(help: "Only leases of this host.") var host: String?
        @Option(help: "Only this state: active, reserved, conflict or cooldown.") var state: String?
        @Option(help: "Only this owner.") var owner: String?
        @Option(
            help: ArgumentHelp(
                "Only the records of this address (in the network whose subnet holds it).",
                valueName: "ip"
            )
        )
        var address: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            _ = try addressOption(address)
            _ = try stateFilter()
        }

        /// The `--state` value; a bad one is a usage error.
        func stateFilter() throws -> LeaseState? {
            guard let state else { return nil }
            guard let parsed = LeaseState(rawValue: state) else {
                throw ValidationError("--state '\(state)' must be active, reserved, conflict or cooldown")
            }
            return parsed
        }

        func run() async throws {
            try await reportingErrors(json: json) {
                var filter = Ledger.LeaseFilter(network: network, host: host, owner: owner)
                filter.state = try stateFilter()
                let wanted = try addressOption(address)
                let leases = try await client.withConnection { connection in
                    guard let wanted else { return try await connection.leases(filter) }
                    return try await Self.leases(of: wanted, filter, on: connection)
                }
                if json { return try printJSON(leases.map(LeaseJSON.init)) }
                var table = TextTable("NETWORK", "ADDRESS", "STATE", "HOST", "OWNER", "IFNAME", "RENEWED", "DETAIL")
                for l in leases {
                    var detail: [String] = []
                    if l.isStatic && l.state == .active { detail.append("static") }
                    if !l.mac.isEmpty { detail.append("mac=\(l.mac)") }
                    if !l.note.isEmpty { detail.append("note=\(l.note)") }
                    if l.state == .cooldown { detail.append("until=\(TimeFormat.iso(l.until))") }
                    table.add([
                        l.network, "\(l.address)/\(l.prefix)", l.state.rawValue, dash(l.host), dash(l.owner),
                        dash(l.ifname), TimeFormat.iso(l.renewed),
                        detail.isEmpty ? "-" : detail.joined(separator: " "),
                    ])
                }
                print(table.rendered)
            }
        }

        /// The records of one address. LEASE-LIST has no address filter; subnets never overlap, so the listing is
        /// narrowed to the one network whose subnet holds the address (or --network) and filtered here.
        static func leases(
            of address: IPv4Address,
            _ filter: Ledger.LeaseFilter,
            on connection: NetleaseConnection
        )
            async throws -> [Lease]
        {
            var narrowed = filter
            if filter.network == nil {
                let networks = try await connection.networks()
                guard let holder = networks.first(where: { $0.spec.subnet.contains(address) }) else { return [] }
                narrowed.network = holder.spec.name
            }
            return try await connection.leases(narrowed).filter { $0.address == address }
        }
    }
}

func dash(_ text: String) -> String { text.isEmpty ? "-" : text }

extension Netlease.LeaseCommand {
    struct Acquire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lease an address to an owner; prints A.B.C.D/PREFIX.",
            discussion: """
                Idempotent: the same --network and --owner get the same address back. Without --host, or for a \
                host that never joined, the lease is static: it never expires and stays until released.
                """
        )
        @OptionGroup var client: ClientOptions
        @Option(help: "Network name.") var network: String
        @Option(help: "Owner id, e.g. a container id.") var owner: String
        @Option(help: "Host the lease belongs to (expires with the host's heartbeats if it joined).") var host: String?
        @Option(help: "Ask for this address.") var address: String?
        @Flag(help: "Print the lease as JSON.") var json = false

        func validate() throws { _ = try addressOption(address) }

        func run() async throws {
            try await reportingErrors(json: json) {
                let wanted = try addressOption(address)
                let request = AcquireRequest(
                    network: network,
                    owner: owner,
                    claim: host.map { HostClaim(host: $0) },
                    address: wanted
                )
                let lease = try await client.withConnection { try await $0.acquire(request) }
                if json { try printJSON(LeaseJSON(lease)) } else { print("\(lease.address)/\(lease.prefix)") }
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a lease by owner or by address (idempotent); the address enters cooldown."
        )
        @OptionGroup var client: ClientOptions
        @Option(help: "Network name.") var network: String
        @Option(help: "Owner whose lease to release.") var owner: String?
        @Option(help: "Address to release (also clears a conflict quarantine).") var address: String?
        @Flag(help: "Print the released lease as JSON (null when nothing was held).") var json = false

        func validate() throws {
            guard (owner == nil) != (address == nil) else {
                throw ValidationError("give exactly one of --owner or --address")
            }
            _ = try addressOption(address)
        }

        func run() async throws {
            try await reportingErrors(json: json) {
                let wanted = try addressOption(address)
                let released = try await client.withConnection {
                    try await $0.release(ReleaseRequest(network: network, owner: owner, address: wanted))
                }
                if json { return try printJSON(released.map(LeaseJSON.init)) }
                if let released {
                    print("released \(released.address)/\(released.prefix)")
                } else {
                    print("nothing to release")
                }
            }
        }
    }

    struct Reserve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set an address aside so it is never handed out.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Network name.") var network: String
        @Option(help: "Address to reserve.") var address: String
        @Option(help: "Why (shown in listings).") var note: String = ""
        @Flag(help: "Print the reservation as JSON.") var json = false

        func validate() throws { _ = try addressOption(address) }

        func run() async throws {
            try await reportingErrors(json: json) {
                let target = try addressOption(address)
                let lease = try await client.withConnection {
                    try await $0.reserve(network: network, address: target, note: note)
                }
                if json { try printJSON(LeaseJSON(lease)) } else { print("reserved \(lease.address)/\(lease.prefix)") }
            }
        }
    }

    struct Unreserve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Return a reserved address to the pool.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Network name.") var network: String
        @Option(help: "Reserved address.") var address: String
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws { _ = try addressOption(address) }

        func run() async throws {
            try await reportingErrors(json: json) {
                let target = try addressOption(address)
                try await client.withConnection { try await $0.unreserve(network: network, address: target) }
                if json {
                    try printJSON(["network": network, "unreserved": target.description])
                } else {
                    print("unreserved \(target)")
                }
            }
        }
    }
}
