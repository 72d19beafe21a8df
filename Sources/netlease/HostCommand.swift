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
                abstract: "Remove a host for good: its leases go to cooldown; it must join again to come back."
            )
            @OptionGroup var client: ClientOptions
            @Argument(help: "Host name.") var name: String
            @Flag(help: "Print the result as JSON.") var json = false

            func run() async throws {
                try await reportingErrors(json: json) {
                    let released = try await client.withConnection { try await $0.removeHost(name) }
                    if json {
                        try printJSON(HostRemovalJSON(removed: name, released: released))
                    } else {
                        print("removed host \(name); \(released) lease(s) moved to cooldown")
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
