/// How a network's bridges are joined across hosts.
public enum TunnelKind: String, Sendable, CaseIterable, Codable {
    /// One VXLAN device per network, one all-zeros forwarding entry per peer (the default).
    case vxlan
    /// One gretap device per peer.
    case gre
    /// An Open vSwitch bridge with one GRE port per peer, attached to the Linux bridge.
    case ovsGre = "ovs-gre"
}

/// A network: one flat subnet stretched across hosts.
public struct NetworkSpec: Sendable, Equatable {
    public var name: String
    public var subnet: IPv4Subnet
    public var tunnel: TunnelKind
    public var vni: UInt32
    public var bridge: String
    /// 0 means "underlay MTU minus tunnel overhead", computed by each agent.
    public var mtu: Int
    public var leaseTTL: Int
    public var cooldown: Int
    public var excluded: [IPv4Range]
    public var created: Millis

    public static let defaultLeaseTTL = 120
    public static let defaultCooldown = 60

    public init(
        name: String,
        subnet: IPv4Subnet,
        tunnel: TunnelKind = .vxlan,
        vni: UInt32 = 0,
        bridge: String = "",
        mtu: Int = 0,
        leaseTTL: Int = defaultLeaseTTL,
        cooldown: Int = defaultCooldown,
        excluded: [IPv4Range] = [],
        created: Millis = 0
    ) {
        self.name = name
        self.subnet = subnet
        self.tunnel = tunnel
        self.vni = vni
        self.bridge = bridge
        self.mtu = mtu
        self.leaseTTL = leaseTTL
        self.cooldown = cooldown
        self.excluded = excluded
        self.created = created
    }

    public func isExcluded(_ address: IPv4Address) -> Bool { excluded.contains { $0.contains(address) } }

    /// Addresses that can ever be leased: host addresses minus excluded ones.
    public var usableCount: UInt64 {
        var count = subnet.hostCount
        for range in IPv4Range.merged(excluded) {
            let lo = max(range.first.value, subnet.firstHost.value)
            let hi = min(range.last.value, subnet.lastHost.value)
            if lo <= hi { count -= min(count, UInt64(hi - lo) + 1) }
        }
        return count
    }
}

public enum HostState: String, Sendable, CaseIterable {
    case up
    case lost
}

/// A machine running an agent.
public struct HostRecord: Sendable, Equatable {
    public var name: String
    public var underlay: IPv4Address
    /// Incremented on every join; requests carrying an older epoch are refused.
    public var epoch: Int64
    public var state: HostState
    public var networks: [String]
    public var joined: Millis
    public var lastHeartbeat: Millis

    public init(
        name: String,
        underlay: IPv4Address,
        epoch: Int64,
        state: HostState,
        networks: [String],
        joined: Millis,
        lastHeartbeat: Millis
    ) {
        self.name = name
        self.underlay = underlay
        self.epoch = epoch
        self.state = state
        self.networks = networks
        self.joined = joined
        self.lastHeartbeat = lastHeartbeat
    }
}

public enum LeaseState: String, Sendable, CaseIterable {
    /// Held by an owner (a container, or a host's bridge).
    case active
    /// Set aside by an admin; never handed out.
    case reserved
    /// Quarantined after something answered an ARP probe for it; `mac` says what answered.
    case conflict
    /// Released or reclaimed; unavailable until `until`.
    case cooldown
}

/// One address of one network and who holds it.
public struct Lease: Sendable, Equatable {
    public var network: String
    public var address: IPv4Address
    public var prefix: Int
    public var state: LeaseState
    public var host: String
    public var owner: String
    public var ifname: String
    public var note: String
    public var mac: String
    /// A static lease never expires with its host: the admin's manual assignment.
    public var isStatic: Bool
    public var created: Millis
    public var renewed: Millis
    /// End of cooldown (state `cooldown` only).
    public var until: Millis

    public init(
        network: String,
        address: IPv4Address,
        prefix: Int,
        state: LeaseState,
        host: String = "",
        owner: String = "",
        ifname: String = "",
        note: String = "",
        mac: String = "",
        isStatic: Bool = true,
        created: Millis,
        renewed: Millis,
        until: Millis = 0
    ) {
        self.network = network
        self.address = address
        self.prefix = prefix
        self.state = state
        self.host = host
        self.owner = owner
        self.ifname = ifname
        self.note = note
        self.mac = mac
        self.isStatic = isStatic
        self.created = created
        self.renewed = renewed
        self.until = until
    }

    /// Owner id of the lease that holds a host's bridge address.
    public static func bridgeOwner(host: String) -> String { "bridge:\(host)" }
    public var isBridge: Bool { Self.isBridgeOwner(owner) }

    /// Whether `owner` is in the space reserved for bridge addresses. Compared by bytes: `String.hasPrefix` compares
    /// characters, and "bridge:" followed by a combining mark does not start with the character ":".
    public static func isBridgeOwner(_ owner: String) -> Bool { owner.utf8.starts(with: "bridge:".utf8) }
}

/// Address counts of one network.
public struct PoolCounts: Sendable, Equatable {
    public var usable: UInt64
    public var active: Int
    public var reserved: Int
    public var conflict: Int
    public var cooldown: Int
    public var free: UInt64 {
        let taken = UInt64(active + reserved + conflict + cooldown)
        return usable > taken ? usable - taken : 0
    }

    public init(usable: UInt64, active: Int = 0, reserved: Int = 0, conflict: Int = 0, cooldown: Int = 0) {
        self.usable = usable
        self.active = active
        self.reserved = reserved
        self.conflict = conflict
        self.cooldown = cooldown
    }
}

/// A network's definition and its address counts.
public struct NetworkSummary: Sendable, Equatable {
    public var spec: NetworkSpec
    public var counts: PoolCounts

    public init(spec: NetworkSpec, counts: PoolCounts) {
        self.spec = spec
        self.counts = counts
    }
}
