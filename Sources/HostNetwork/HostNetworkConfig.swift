import NetleaseCore

/// Everything one host needs to know to build one network: its bridge, its address on the bridge, the tunnel and the
/// peers to reach.
public struct HostNetworkConfig: Sendable, Equatable {
    /// The network's name; what `teardown(network:)` refers to.
    public var network: String
    /// The Linux bridge (at most 15 bytes).
    public var bridge: String
    /// This host's address on the bridge: the containers' gateway.
    public var bridgeAddress: IPv4Address
    /// Prefix length of the network's subnet.
    public var prefix: Int
    public var tunnel: TunnelKind
    /// VXLAN network identifier (vxlan: required, 1…16777215); for gre, when non-zero, the GRE key.
    public var vni: UInt32
    /// Bridge MTU; 0 means underlay MTU minus the tunnel's overhead.
    public var mtu: Int
    /// This host's tunnel endpoint.
    public var underlay: IPv4Address
    /// MTU of the underlay; nil means "read it from the interface holding `underlay`" (1500 when none does).
    public var underlayMTU: Int?
    /// Other hosts of the network: host name → underlay address. An entry at `underlay` (this host) is ignored.
    public var peers: [String: IPv4Address]
    /// The Open vSwitch bridge, for `ovs-gre`.
    public var ovsBridge: String

    /// Smallest and largest valid VXLAN network identifiers.
    public static let vniRange: ClosedRange<UInt32> = 1...0xFF_FFFF

    public init(
        network: String,
        bridge: String,
        bridgeAddress: IPv4Address,
        prefix: Int,
        tunnel: TunnelKind = .vxlan,
        vni: UInt32 = 0,
        mtu: Int = 0,
        underlay: IPv4Address,
        underlayMTU: Int? = nil,
        peers: [String: IPv4Address] = [:],
        ovsBridge: String? = nil
    ) {
        self.network = network
        self.bridge = bridge
        self.bridgeAddress = bridgeAddress
        self.prefix = prefix
        self.tunnel = tunnel
        self.vni = vni
        self.mtu = mtu
        self.underlay = underlay
        self.underlayMTU = underlayMTU
        self.peers = peers
        self.ovsBridge = ovsBridge ?? InterfaceNames.ovsBridge(bridge: bridge)
    }

    /// The configuration of `spec` on one host. An empty bridge name in the spec becomes
    /// `InterfaceNames.bridge(network:)`.
    public init(
        spec: NetworkSpec,
        bridgeAddress: IPv4Address,
        underlay: IPv4Address,
        peers: [String: IPv4Address],
        underlayMTU: Int? = nil
    ) {
        self.init(
            network: spec.name,
            bridge: spec.bridge.isEmpty ? InterfaceNames.bridge(network: spec.name) : spec.bridge,
            bridgeAddress: bridgeAddress,
            prefix: spec.subnet.prefix,
            tunnel: spec.tunnel,
            vni: spec.vni,
            mtu: spec.mtu,
            underlay: underlay,
            underlayMTU: underlayMTU,
            peers: peers
        )
    }

    /// The bridge MTU: `mtu` when set, otherwise the underlay MTU minus the tunnel's overhead.
    public func effectiveMTU(underlayMTU: Int) -> Int {
        mtu > 0 ? mtu : underlayMTU - tunnel.overhead
    }

    /// Peers other than this host, by host name.
    var remotePeers: [String: IPv4Address] { peers.filter { $0.value != underlay } }

    func validate() throws {
        guard !network.isEmpty else { throw HostNetworkError(.invalidConfiguration, "network name is empty") }
        for name in [bridge, ovsBridge] where !Names.isValidInterface(name) {
            throw HostNetworkError(.invalidConfiguration, "'\(name)' is not a valid interface name (1-15 bytes)")
        }
        guard (1...32).contains(prefix) else {
            throw HostNetworkError(.invalidConfiguration, "prefix /\(prefix) is out of range")
        }
        if tunnel == .vxlan, !Self.vniRange.contains(vni) {
            throw HostNetworkError(.invalidConfiguration, "VXLAN network '\(network)' needs a VNI in 1-16777215")
        }
        guard mtu == 0 || (68...65535).contains(mtu) else {
            throw HostNetworkError(.invalidConfiguration, "MTU \(mtu) is out of range")
        }
    }
}

/// What `ensureNetwork` found and did.
public struct NetworkReport: Sendable, Equatable {
    public var bridge: String
    /// The MTU the bridge and tunnel devices have (or were given).
    public var mtu: Int
    /// One line per difference that was fixed, in order; empty when the host already matched.
    public var changes: [String]

    public init(bridge: String, mtu: Int, changes: [String]) {
        self.bridge = bridge
        self.mtu = mtu
        self.changes = changes
    }
}
