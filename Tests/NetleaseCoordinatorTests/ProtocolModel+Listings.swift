import Foundation

/// The listings as the contract spells them, and the comparisons of replies with the model.
extension ProtocolModel {
    // MARK: listings

    /// LEASE-LIST: sorted by network name, then address; cooldown records only when asked for by state.
    func listing(network: String? = nil, host: String? = nil, owner: String? = nil, state: String? = nil) -> [String] {
        var lines: [String] = []
        for name in networks.keys.sorted(by: Self.byteOrder) where network == nil || network == name {
            for (address, record) in records[name]!.sorted(by: { $0.key < $1.key }) {
                // Cooldown records only when asked for by state.
                guard record.state == state ?? (record.state == "cooldown" ? "" : record.state) else { continue }
                if let host, record.host != host { continue }
                if let owner, record.owner != owner { continue }
                lines.append(leaseText(name, address, record, listed: true))
            }
        }
        return lines
    }

    static func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    static let leaseKeys = [
        "network", "address", "state", "host", "owner", "ifname", "note", "mac", "static",
        "created", "renewed", "until",
    ]

    /// A LEASE record as the model expects it. In listings a host-bound active lease shows its host's heartbeat.
    func leaseText(_ network: String, _ address: UInt32, _ r: MRecord, listed: Bool) -> String {
        var renewed = r.renewed
        if listed, r.state == "active", !r.isStatic, let host = hosts[r.host] { renewed = max(renewed, host.heartbeat) }
        let prefix = networks[network]!.subnet.prefix
        let values = [
            network, "\(IPText.text(address))/\(prefix)", r.state, r.host, r.owner, r.ifname, r.note, r.mac,
            r.isStatic ? "1" : "0", String(r.created), String(renewed), String(r.until),
        ]
        return zip(Self.leaseKeys, values).map { "\($0)=\($1)" }.joined(separator: " ")
    }

    static func leaseText(observed line: WireLine) -> String {
        leaseKeys.map { "\($0)=\(line[$0] ?? "<missing>")" }.joined(separator: " ")
    }

    static func leaseAddress(_ text: String?, prefix: Int) -> UInt32? {
        guard let parts = text?.split(separator: "/"), parts.count == 2, parts[1] == "\(prefix)" else { return nil }
        return IPText.parse(String(parts[0]))
    }

    static let networkKeys = [
        "name", "subnet", "tunnel", "vni", "bridge", "mtu", "lease-ttl", "cooldown", "exclude",
        "created",
    ]
    static let countKeys = ["usable", "active", "reserved", "conflict", "cooldown-count", "free"]

    func networkText(_ n: MNetwork, counts: Bool) -> String {
        var values = [
            n.name, n.subnet.text, n.tunnel, String(n.vni), n.bridge, String(n.mtu), String(n.ttl),
            String(n.cooldown), IdentifierRules.rangesText(n.excluded), String(n.created),
        ]
        if counts {
            let book = records[n.name] ?? [:]
            let count = { (state: String) in book.values.filter { $0.state == state }.count }
            let (active, reserved, conflict, cooling) = (
                count("active"), count("reserved"), count("conflict"),
                count("cooldown")
            )
            values += [
                n.usable, active, reserved, conflict, cooling,
                max(0, n.usable - active - reserved - conflict - cooling),
            ].map(String.init)
        }
        return zip(Self.networkKeys + (counts ? Self.countKeys : []), values).map { "\($0)=\($1)" }
            .joined(separator: " ")
    }

    static func networkText(observed line: WireLine, counts: Bool) -> String {
        var exclude = "<missing>"
        if let text = line["exclude"] {
            var addresses = Set<UInt32>()
            for item in text.split(separator: ",") {
                guard let range = IdentifierRules.range(String(item)) else {
                    addresses = []
                    exclude = "<unreadable \(text)>"
                    break
                }
                addresses.formUnion(range)
            }
            if !exclude.hasPrefix("<unreadable") { exclude = IdentifierRules.rangesText(addresses) }
        }
        return (networkKeys + (counts ? countKeys : [])).map { key in
            "\(key)=\(key == "exclude" ? exclude : line[key] ?? "<missing>")"
        }.joined(separator: " ")
    }

    static let hostKeys = ["name", "underlay", "epoch", "state", "networks", "joined", "heartbeat"]

    func hostText(_ h: MHost) -> String {
        let values = [
            h.name, IPText.text(h.underlay), String(h.epoch), h.up ? "up" : "lost",
            h.networks.joined(separator: ","), String(h.joined), String(h.heartbeat),
        ]
        return zip(Self.hostKeys, values).map { "\($0)=\($1)" }.joined(separator: " ")
    }

    static func hostText(observed line: WireLine) -> String {
        hostKeys.map { "\($0)=\(line[$0] ?? "<missing>")" }.joined(separator: " ")
    }

    func compareNetworks(_ reply: WireReply) throws {
        try Self.sameList(
            "NETWORK-LIST",
            reply.records.map { Self.networkText(observed: $0, counts: true) },
            networks.keys.sorted(by: Self.byteOrder).map { networkText(networks[$0]!, counts: true) }
        )
    }

    func compareHosts(_ reply: WireReply) throws {
        try Self.sameList(
            "HOST-LIST",
            reply.records.map(Self.hostText(observed:)),
            hosts.keys.sorted(by: Self.byteOrder).map { hostText(hosts[$0]!) }
        )
    }

    func compareStats(_ reply: WireReply) throws {
        let all = records.values.flatMap(\.values)
        let expected: [(String, Int)] =
            [
                ("networks", networks.count), ("hosts-up", hosts.values.filter(\.up).count),
                ("hosts-lost", hosts.values.filter { !$0.up }.count),
            ] + Self.states.map { state in ("leases-\(state)", all.filter { $0.state == state }.count) }
        for (key, value) in expected { try Self.same("STATS \(key)", reply.head[key], String(value)) }
    }

    func checkGeneration(_ text: String?, _ verb: String) throws {
        guard let generation = text.flatMap(IdentifierRules.number) else {
            throw ModelFailure("\(verb) reply without a store generation")
        }
        guard generation >= self.generation else {
            throw ModelFailure("\(verb): store generation went back from \(self.generation) to \(generation)")
        }
        self.generation = generation
    }

    // MARK: comparing

    static func same(_ what: String, _ observed: String?, _ expected: String) throws {
        guard observed == expected else {
            throw ModelFailure("\(what):\n    expected \(expected)\n    got      \(observed ?? "<missing>")")
        }
    }

    static func sameList(_ what: String, _ observed: [String], _ expected: [String]) throws {
        guard observed != expected else { return }
        let missing = expected.filter { !observed.contains($0) }
        let extra = observed.filter { !expected.contains($0) }
        var text = "\(what) differs from the model (\(observed.count) records, expected \(expected.count))"
        for line in missing.prefix(6) { text += "\n    expected  \(line)" }
        for line in extra.prefix(6) { text += "\n    got       \(line)" }
        if missing.isEmpty && extra.isEmpty { text += "\n    (same records in another order)" }
        throw ModelFailure(text)
    }
}
