import Foundation
import NetleaseCore

/// Aligned plain-text tables for people.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    mutating func add(_ row: [String]) { rows.append(row) }

    var rendered: String {
        let all = ([header] + rows).map { $0.map(Self.shown) }
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        return all.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// `cell` as a terminal shows it plainly: control and format characters (bidi overrides, zero-width joiners),
    /// line and paragraph separators and every space but U+0020 are written as `\u{XXXX}`. Owners, notes and MACs
    /// are free text from clients: a right-to-left override or a tab in one would otherwise redraw the columns
    /// after it, and a lease would read as another's. `--json` output carries the text as it is.
    static func shown(_ cell: String) -> String {
        var text = ""
        for scalar in cell.unicodeScalars {
            let plain: Bool
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                plain = false
            case .spaceSeparator: plain = scalar == " "
            default: plain = true
            }
            if plain {
                text.unicodeScalars.append(scalar)
            } else {
                text += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
        return text
    }
}

enum TimeFormat {
    /// RFC 3339 UTC with milliseconds, or "-" for 0.
    static func iso(_ millis: Millis) -> String {
        guard millis > 0 else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}

/// JSON shapes of the CLI's `--json` output. Field names are a contract for scripts.
struct LeaseJSON: Encodable {
    var network, address, cidr, state, host, owner, ifname, note, mac, created, renewed: String
    var prefix: Int
    var isStatic: Bool
    var until: String?

    enum CodingKeys: String, CodingKey {
        case network, address, cidr, prefix, state, host, owner, ifname, note, mac, created, renewed, until
        case isStatic = "static"
    }

    init(_ lease: Lease) {
        network = lease.network
        address = lease.address.description
        cidr = "\(lease.address)/\(lease.prefix)"
        prefix = lease.prefix
        state = lease.state.rawValue
        host = lease.host
        owner = lease.owner
        ifname = lease.ifname
        note = lease.note
        mac = lease.mac
        isStatic = lease.isStatic
        created = TimeFormat.iso(lease.created)
        renewed = TimeFormat.iso(lease.renewed)
        until = lease.state == .cooldown ? TimeFormat.iso(lease.until) : nil
    }
}

struct NetworkJSON: Encodable {
    var name, subnet, tunnel, bridge, created: String
    var vni: UInt32
    var mtu, leaseTTL, cooldown: Int
    var exclude: [String]
    var usable: UInt64
    var free: UInt64
    var active, reserved, conflict, cooling: Int

    enum CodingKeys: String, CodingKey {
        case name, subnet, tunnel, bridge, created, vni, mtu, exclude, usable, free, active, reserved, conflict
        case leaseTTL = "lease_ttl"
        case cooldown
        case cooling = "in_cooldown"
    }

    init(_ summary: NetworkSummary) {
        let spec = summary.spec
        name = spec.name
        subnet = spec.subnet.description
        tunnel = spec.tunnel.rawValue
        bridge = spec.bridge
        created = TimeFormat.iso(spec.created)
        vni = spec.vni
        mtu = spec.mtu
        leaseTTL = spec.leaseTTL
        cooldown = spec.cooldown
        exclude = spec.excluded.map(\.description)
        usable = summary.counts.usable
        free = summary.counts.free
        active = summary.counts.active
        reserved = summary.counts.reserved
        conflict = summary.counts.conflict
        cooling = summary.counts.cooldown
    }
}

struct HostJSON: Encodable {
    var name, underlay, state, joined, heartbeat: String
    var epoch: Int64
    var networks: [String]

    init(_ host: HostRecord) {
        name = host.name
        underlay = host.underlay.description
        state = host.state.rawValue
        joined = TimeFormat.iso(host.joined)
        heartbeat = TimeFormat.iso(host.lastHeartbeat)
        epoch = host.epoch
        networks = host.networks
    }
}

/// `STATS` as one JSON object: counters as numbers, identifiers as strings. Which fields are identifiers is said here,
/// not guessed from the value: a store id made only of digits stays a string. A field this CLI does not know yet
/// (a newer coordinator) is a number when it reads as one, else a string — never dropped, never turned into 0.
struct StatsJSON: Encodable {
    /// Fields whose values are names or ids, not counts.
    static let textFields: Set<String> = ["store-id", "version"]

    enum Value: Encodable, Equatable {
        case number(Int64)
        case text(String)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .number(let number): try container.encode(number)
            case .text(let text): try container.encode(text)
            }
        }
    }

    var values: [String: Value] = [:]

    init(_ pairs: [(key: String, value: String)]) {
        for (key, text) in pairs {
            if !Self.textFields.contains(key), let number = Int64(text) {
                values[key] = .number(number)
            } else {
                values[key] = .text(text)
            }
        }
    }

    func encode(to encoder: any Encoder) throws {
        try values.encode(to: encoder)
    }
}

/// `host remove --json`.
struct HostRemovalJSON: Encodable {
    var removed: String
    var released: Int
    /// Left out when the coordinator did not say (an older version, which does not revoke on removal).
    var revoked: Bool?
    var closed: Int
}

/// `backup --json`.
struct BackupJSON: Encodable {
    var store: String
    var generation: Int64
    var bytes: Int
    var file: String
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}
