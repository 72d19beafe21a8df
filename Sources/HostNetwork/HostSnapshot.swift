import Foundation
import NetleaseCore

/// What the host looked like when an operation began: every link, and for the network's tunnel the forwarding
/// entries or OVS state. Plans are computed from one snapshot; nothing is re-read halfway.
struct HostSnapshot: Sendable, Equatable {
    var links: [String: ObservedLink]
    /// Destinations of the all-zeros forwarding entries of the network's VXLAN device; empty when it has none or
    /// does not exist.
    var fdbDestinations: Set<IPv4Address> = []
    var ovs: OVSSnapshot?

    init(links: [ObservedLink], fdbDestinations: Set<IPv4Address> = [], ovs: OVSSnapshot? = nil) {
        var byName: [String: ObservedLink] = [:]
        for link in links { byName[link.name] = link }
        self.links = byName
        self.fdbDestinations = fdbDestinations
        self.ovs = ovs
    }

    /// The interface that holds `address`, if any.
    func link(holding address: IPv4Address) -> ObservedLink? {
        links.values.sorted { $0.index < $1.index }.first { $0.addresses.contains { $0.address == address } }
    }

    /// The all-zeros MAC used for VXLAN head-end replication entries.
    static let zeroMAC = "00:00:00:00:00:00"

    /// Parses `bridge -j fdb show dev X`: destinations of the all-zeros entries.
    static func parseFDBDestinations(_ json: String, command: [String] = []) throws -> Set<IPv4Address> {
        let array = try CommandJSON.array(json, of: [String: Any].self, command: command)
        var result: Set<IPv4Address> = []
        for entry in array where entry["mac"] as? String == zeroMAC {
            if let destination = (entry["dst"] as? String).flatMap(IPv4Address.init) { result.insert(destination) }
        }
        return result
    }
}

/// The part of Open vSwitch's database that concerns one network's OVS bridge.
struct OVSSnapshot: Sendable, Equatable {
    var bridgeExists: Bool
    /// Every OVS bridge (`ovs-vsctl list-br`).
    var bridges: Set<String> = []
    var datapathType: String = ""
    /// Ports of the bridge (`ovs-vsctl list-ports`).
    var ports: Set<String> = []
    /// GRE interfaces of the bridge: name → `options:remote_ip`.
    var greRemotes: [String: IPv4Address] = [:]

    /// Parses `ovs-vsctl --format=json --columns=name,options find interface type=gre`:
    /// `{"data":[["gre-b",["map",[["remote_ip","10.0.0.2"]]]]],"headings":["name","options"]}`.
    static func parseGREInterfaces(_ json: String, command: [String] = []) throws -> [String: IPv4Address] {
        let trimmed = json.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
            let rows = object["data"] as? [[Any]]
        else {
            throw HostNetworkError(
                .unexpectedOutput,
                "`\(ShellQuote.join(command))` did not print OVS JSON",
                command: command
            )
        }
        var result: [String: IPv4Address] = [:]
        for row in rows {
            guard row.count >= 2, let name = row[0] as? String else { continue }
            var remote = IPv4Address(0)
            if let map = row[1] as? [Any], map.count == 2, map[0] as? String == "map",
                let pairs = map[1] as? [[Any]]
            {
                for pair in pairs where pair.count == 2 && pair[0] as? String == "remote_ip" {
                    remote = (pair[1] as? String).flatMap(IPv4Address.init) ?? remote
                }
            }
            result[name] = remote
        }
        return result
    }

    /// Splits line-per-name output (`list-br`, `list-ports`).
    static func parseNames(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
