import ArgumentParser
import Foundation
import NetleaseClient
import NetleaseCore

extension Netlease {
    struct Hosts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List hosts that joined the cluster.")
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                let hosts = try await client.withConnection { try await $0.hosts() }
                if json { return try printJSON(hosts.map(HostJSON.init)) }
                var table = TextTable("NAME", "UNDERLAY", "STATE", "EPOCH", "NETWORKS", "LAST HEARTBEAT")
                for h in hosts {
                    table.add([
                        h.name, h.underlay.description, h.state.rawValue, String(h.epoch),
                        dash(h.networks.joined(separator: ",")), TimeFormat.iso(h.lastHeartbeat),
                    ])
                }
                print(table.rendered)
            }
        }
    }

    struct HostCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "host",
            abstract: "Manage hosts.",
            subcommands: [Remove.self, Credential.self]
        )

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove a host for good: its leases go to cooldown and its credential is revoked.",
                discussion: """
                    Its host-bound leases (containers and bridge addresses) move to cooldown, the other agents drop \
                    their tunnels to it, and its host credential is revoked: the connections that used it are \
                    closed and its agent cannot join again with it. To bring the host back, issue it a new one \
                    ('netlease host credential issue NAME') and start its agent. Stop the agent first: it would \
                    keep retrying with the revoked credential. A host that has a credential but never joined is \
                    removed by revoking it.
                    """
            )
            @OptionGroup var client: ClientOptions
            @Argument(help: "Host name.") var name: String
            @Flag(help: "Print the result as JSON.") var json = false

            func run() async throws {
                try await reportingErrors(json: json) {
                    let removal = try await client.withConnection { try await $0.removeHost(name) }
                    if json {
                        try printJSON(
                            HostRemovalJSON(
                                removed: name,
                                released: removal.released,
                                revoked: removal.revoked,
                                closed: removal.closed
                            )
                        )
                    } else {
                        let credential =
                            switch removal.revoked {
                            case true: "its credential revoked, \(removal.closed) connection(s) closed"
                            case false: "no host credential was left to revoke"
                            case nil:
                                "the coordinator did not say whether it revoked the host's credential (an older "
                                    + "version does not): run 'netlease host credential revoke \(name)'"
                            }
                        print("removed host \(name); \(removal.released) lease(s) moved to cooldown; \(credential)")
                    }
                }
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show coordinator statistics.")
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                let fields = try await client.withConnection { try await $0.stats() }
                if json { return try printJSON(StatsJSON(fields.pairs)) }
                var table = TextTable("STAT", "VALUE")
                for (k, v) in fields.pairs { table.add([k, v]) }
                print(table.rendered)
            }
        }
    }
}

/// One `stats --json` value: a counter or a word.
enum StatValue: Encodable {
    case number(Int64)
    case text(String)

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let value): try container.encode(value)
        case .text(let value): try container.encode(value)
        }
    }
}
