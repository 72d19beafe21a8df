import NetleaseCore

/// A container's link as netlease makes it: the host end of a veth pair named for (network, owner), and its peer,
/// `ifname` inside `namespace`. What `detach` and `inspect` need to find it and to know it is really this one.
public struct ContainerLink: Sendable, Equatable {
    public var network: String
    /// Who holds the lease (e.g. a container id); names the host end of the veth pair.
    public var owner: String
    /// Where the container end must be for the host end to count as this container's.
    public var namespace: NetworkNamespace
    /// Interface name inside the container.
    public var ifname: String
    /// This host's key for names and MACs.
    public var naming: ContainerNaming
    /// The namespace the container was attached to, when known: then the namespace at `namespace`'s path must still
    /// be this one, or the container counts as gone (paths are reused: `ip netns del web1; ip netns add web1`, a
    /// PID taken by another process). Nil: whatever namespace is at the path (a first attach).
    public var namespaceIdentity: NamespaceIdentity?

    public init(
        network: String,
        owner: String,
        namespace: NetworkNamespace,
        ifname: String = "eth0",
        naming: ContainerNaming,
        namespaceIdentity: NamespaceIdentity? = nil
    ) {
        self.network = network
        self.owner = owner
        self.namespace = namespace
        self.ifname = ifname
        self.naming = naming
        self.namespaceIdentity = namespaceIdentity
    }

    /// The host end of the veth pair.
    public var hostInterface: String { naming.hostVeth(network: network, owner: owner) }
    /// The host end's name as older releases made it, still looked for (see `InterfaceNames`).
    public var unkeyedHostInterface: String { InterfaceNames.unkeyedContainerVeth(network: network, owner: owner) }
    /// The MAC of the container end netlease creates.
    public var containerMAC: String { naming.containerMAC(network: network, owner: owner) }
}

/// The container side of a lease: put an interface with this address into this namespace, on this bridge. Its link's
/// fields (`network`, `owner`, `namespace`, `ifname`, `naming`) read and write as the attachment's own.
@dynamicMemberLookup
public struct ContainerAttachment: Sendable, Equatable {
    /// The link this attachment makes.
    public var link: ContainerLink
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
        mtu: Int = 0,
        naming: ContainerNaming,
        namespaceIdentity: NamespaceIdentity? = nil
    ) {
        link = ContainerLink(
            network: network,
            owner: owner,
            namespace: namespace,
            ifname: ifname,
            naming: naming,
            namespaceIdentity: namespaceIdentity
        )
        self.address = address
        self.prefix = prefix
        self.gateway = gateway
        self.bridge = bridge
        self.mtu = mtu
    }

    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<ContainerLink, Value>) -> Value {
        get { link[keyPath: keyPath] }
        set { link[keyPath: keyPath] = newValue }
    }

    public subscript<Value>(dynamicMember keyPath: KeyPath<ContainerLink, Value>) -> Value { link[keyPath: keyPath] }

    func validate() throws {
        guard !link.owner.isEmpty else { throw HostNetworkError(.invalidConfiguration, "owner id is empty") }
        for name in [link.ifname, bridge] where !Names.isValidInterface(name) {
            throw HostNetworkError(.invalidConfiguration, "'\(name)' is not a valid interface name (1-15 bytes)")
        }
        guard (1...32).contains(prefix) else {
            throw HostNetworkError(.invalidConfiguration, "prefix /\(prefix) is out of range")
        }
        guard mtu == 0 || (68...65535).contains(mtu) else {
            throw HostNetworkError(.invalidConfiguration, "MTU \(mtu) is out of range")
        }
        try link.namespace.validate()
    }
}

/// What `attach` set up.
public struct AttachedContainer: Sendable, Equatable {
    /// Host end of the veth pair, on the bridge.
    public var hostInterface: String
    /// Interface name inside the container.
    public var containerInterface: String
    /// The container end's MAC as it is (nil when unknown).
    public var containerMAC: String?
    public var mtu: Int
    /// One line per difference that was fixed; empty when the container was already attached as asked.
    public var changes: [String]
    /// Whether this call made the veth pair (false: it existed and was at most fixed). A caller that fails later
    /// undoes only what its own request made.
    public var created: Bool
    /// The namespace that was plumbed (nil when the kernel cannot tell): what a later repair must find at the path.
    public var namespaceIdentity: NamespaceIdentity?

    public init(
        hostInterface: String,
        containerInterface: String,
        containerMAC: String? = nil,
        mtu: Int,
        changes: [String],
        created: Bool = false,
        namespaceIdentity: NamespaceIdentity? = nil
    ) {
        self.hostInterface = hostInterface
        self.containerInterface = containerInterface
        self.containerMAC = containerMAC
        self.mtu = mtu
        self.changes = changes
        self.created = created
        self.namespaceIdentity = namespaceIdentity
    }
}
