import NetleaseCore

/// The container side of a lease: put an interface with this address into this namespace, on this bridge.
public struct ContainerAttachment: Sendable, Equatable {
    public var network: String
    /// Who holds the lease (e.g. a container id); names the host end of the veth pair.
    public var owner: String
    public var namespace: NetworkNamespace
    /// Interface name inside the container.
    public var ifname: String
    public var address: IPv4Address
    public var prefix: Int
    /// Default route via this address: the host's bridge address.
    public var gateway: IPv4Address
    public var bridge: String
    /// MTU of both veth ends; 0 means the bridge's current MTU.
    public var mtu: Int

    public init(
        network: String,
        owner: String,
        namespace: NetworkNamespace,
        ifname: String = "eth0",
        address: IPv4Address,
        prefix: Int,
        gateway: IPv4Address,
        bridge: String,
        mtu: Int = 0
    ) {
        self.network = network
        self.owner = owner
        self.namespace = namespace
        self.ifname = ifname
        self.address = address
        self.prefix = prefix
        self.gateway = gateway
        self.bridge = bridge
        self.mtu = mtu
    }

    /// The host end of the veth pair.
    public var hostInterface: String { InterfaceNames.containerVeth(network: network, owner: owner) }

    func validate() throws {
        guard !owner.isEmpty else { throw HostNetworkError(.invalidConfiguration, "owner id is empty") }
        for name in [ifname, bridge] where !Names.isValidInterface(name) {
            throw HostNetworkError(.invalidConfiguration, "'\(name)' is not a valid interface name (1-15 bytes)")
        }
        guard (1...32).contains(prefix) else {
            throw HostNetworkError(.invalidConfiguration, "prefix /\(prefix) is out of range")
        }
        guard mtu == 0 || (68...65535).contains(mtu) else {
            throw HostNetworkError(.invalidConfiguration, "MTU \(mtu) is out of range")
        }
        try namespace.validate()
    }
}

/// What `attach` set up.
public struct AttachedContainer: Sendable, Equatable {
    /// Host end of the veth pair, on the bridge.
    public var hostInterface: String
    /// Interface name inside the container.
    public var containerInterface: String
    public var mtu: Int
    /// One line per difference that was fixed; empty when the container was already attached as asked.
    public var changes: [String]

    public init(hostInterface: String, containerInterface: String, mtu: Int, changes: [String]) {
        self.hostInterface = hostInterface
        self.containerInterface = containerInterface
        self.mtu = mtu
        self.changes = changes
    }
}
