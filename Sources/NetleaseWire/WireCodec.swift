import NetleaseCore

/// Domain values as fields and back. Record tags: `NETWORK`, `HOST`, `LEASE`.
public enum WireCodec {
    public static let networkTag = "NETWORK"
    public static let hostTag = "HOST"
    public static let leaseTag = "LEASE"
    /// HOST-CREDENTIAL-LIST records: host and issue time, never a hash.
    public static let credentialTag = "CREDENTIAL"
    /// Records of a BACKUP reply: `DATA b64=<base64 of up to backupChunkBytes bytes>`.
    public static let dataTag = "DATA"
    public static let backupChunkBytes = 4096

    static func list(_ text: String?) -> [String] {
        guard let text, !text.isEmpty else { return [] }
        return text.split(separator: ",").map(String.init)
    }

    static func claim(from f: Fields) throws -> HostClaim? {
        let epoch = try f.int("epoch")
        guard let host = f["host"] else {
            if epoch != nil { throw NetleaseError.badRequest("field 'epoch' needs field 'host'") }
            return nil
        }
        guard !host.isEmpty else { throw NetleaseError.badRequest("field 'host' must not be empty") }
        return HostClaim(host: host, epoch: epoch)
    }

    static func append(claim: HostClaim?, to f: inout Fields) {
        guard let claim else { return }
        f.append("host", claim.host)
        if let epoch = claim.epoch { f.append("epoch", String(epoch)) }
    }

    // MARK: networks

    static func fields(createRequest spec: NetworkSpec) -> Fields {
        var f = Fields()
        f.append("name", spec.name)
        f.append("subnet", spec.subnet.description)
        f.append("tunnel", spec.tunnel.rawValue)
        if spec.vni != 0 { f.append("vni", String(spec.vni)) }
        if !spec.bridge.isEmpty { f.append("bridge", spec.bridge) }
        if spec.mtu != 0 { f.append("mtu", String(spec.mtu)) }
        f.append("lease-ttl", String(spec.leaseTTL))
        f.append("cooldown", String(spec.cooldown))
        if !spec.excluded.isEmpty { f.append("exclude", spec.excluded.map(\.description).joined(separator: ",")) }
        return f
    }

    /// A network's definition, plus its counts when given.
    public static func fields(network spec: NetworkSpec, counts: PoolCounts? = nil) -> Fields {
        var f = fields(createRequest: spec)
        f["vni"] = String(spec.vni)
        f["bridge"] = spec.bridge
        f["mtu"] = String(spec.mtu)
        f["exclude"] = spec.excluded.map(\.description).joined(separator: ",")
        f.append("created", String(spec.created))
        if let counts {
            f.append("usable", String(counts.usable))
            f.append("active", String(counts.active))
            f.append("reserved", String(counts.reserved))
            f.append("conflict", String(counts.conflict))
            f.append("cooldown-count", String(counts.cooldown))
            f.append("free", String(counts.free))
        }
        return f
    }

    public static func networkSpec(from f: Fields, requireAll: Bool) throws -> NetworkSpec {
        let name = try f.requireNonEmpty("name")
        let subnetText = try f.require("subnet")
        guard let subnet = IPv4Subnet(subnetText) else {
            throw NetleaseError.badRequest(
                "field 'subnet' must be a CIDR with host bits zero (like 172.30.0.0/16), got '\(subnetText)'"
            )
        }
        var spec = NetworkSpec(name: name, subnet: subnet)
        if let text = f["tunnel"] {
            guard let tunnel = TunnelKind(rawValue: text) else {
                throw NetleaseError.badRequest(
                    "field 'tunnel' must be one of \(TunnelKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'"
                )
            }
            spec.tunnel = tunnel
        }
        if let vni = try f.int("vni") {
            guard (0...16_777_215).contains(vni) else {
                throw NetleaseError.badRequest("vni \(vni) is out of range 1-16777215")
            }
            spec.vni = UInt32(vni)
        }
        spec.bridge = f["bridge"] ?? ""
        if let mtu = try f.int("mtu") { spec.mtu = Int(clamping: mtu) }
        if let ttl = try f.int("lease-ttl") { spec.leaseTTL = Int(clamping: ttl) }
        if let cooldown = try f.int("cooldown") { spec.cooldown = Int(clamping: cooldown) }
        for text in list(f["exclude"]) {
            guard let range = IPv4Range(text) else {
                throw NetleaseError.badRequest("field 'exclude' has '\(text)', not an address, A-B range or CIDR")
            }
            spec.excluded.append(range)
        }
        if requireAll { spec.created = try f.requireInt("created") }
        return spec
    }

    public static func counts(from f: Fields) throws -> PoolCounts? {
        guard let usable = try f.int("usable") else { return nil }
        var values: [Int] = []
        for key in ["active", "reserved", "conflict", "cooldown-count"] {
            let value = try f.int(key) ?? 0
            guard value >= 0 else { throw NetleaseError.badRequest("field '\(key)' must not be negative") }
            values.append(Int(value))
        }
        guard usable >= 0 else { throw NetleaseError.badRequest("field 'usable' must not be negative") }
        return PoolCounts(
            usable: UInt64(usable),
            active: values[0],
            reserved: values[1],
            conflict: values[2],
            cooldown: values[3]
        )
    }

    // MARK: hosts

    public static func fields(host: HostRecord) -> Fields {
        var f = Fields()
        f.append("name", host.name)
        f.append("underlay", host.underlay.description)
        f.append("epoch", String(host.epoch))
        f.append("state", host.state.rawValue)
        f.append("networks", host.networks.joined(separator: ","))
        f.append("joined", String(host.joined))
        f.append("heartbeat", String(host.lastHeartbeat))
        return f
    }

    public static func host(from f: Fields) throws -> HostRecord {
        let stateText = try f.require("state")
        guard let state = HostState(rawValue: stateText) else {
            throw NetleaseError.badRequest("unknown host state '\(stateText)'")
        }
        return HostRecord(
            name: try f.require("name"),
            underlay: try f.requireAddress("underlay"),
            epoch: try f.requireInt("epoch"),
            state: state,
            networks: list(f["networks"]),
            joined: try f.requireInt("joined"),
            lastHeartbeat: try f.requireInt("heartbeat")
        )
    }

    // MARK: leases

    public static func fields(lease: Lease) -> Fields {
        var f = Fields()
        f.append("network", lease.network)
        f.append("address", "\(lease.address)/\(lease.prefix)")
        f.append("state", lease.state.rawValue)
        f.append("host", lease.host)
        f.append("owner", lease.owner)
        f.append("ifname", lease.ifname)
        f.append("note", lease.note)
        f.append("mac", lease.mac)
        f.append("static", lease.isStatic ? "1" : "0")
        f.append("created", String(lease.created))
        f.append("renewed", String(lease.renewed))
        f.append("until", String(lease.until))
        return f
    }

    public static func lease(from f: Fields) throws -> Lease {
        let addressText = try f.require("address")
        let parts = addressText.split(separator: "/")
        guard parts.count == 2, let address = IPv4Address(parts[0]), let prefix = Int(parts[1]),
            (0...32).contains(prefix)
        else {
            throw NetleaseError.badRequest("lease address '\(addressText)' is not A.B.C.D/PREFIX")
        }
        let stateText = try f.require("state")
        guard let state = LeaseState(rawValue: stateText) else {
            throw NetleaseError.badRequest("unknown lease state '\(stateText)'")
        }
        return Lease(
            network: try f.require("network"),
            address: address,
            prefix: prefix,
            state: state,
            host: f["host"] ?? "",
            owner: f["owner"] ?? "",
            ifname: f["ifname"] ?? "",
            note: f["note"] ?? "",
            mac: f["mac"] ?? "",
            isStatic: f["static"] != "0",
            created: try f.int("created") ?? 0,
            renewed: try f.int("renewed") ?? 0,
            until: try f.int("until") ?? 0
        )
    }
}
