import NetleaseCore

/// Everything the agent does to the host's network, behind one protocol so that the agent is tested with
/// `RecordingHostNetwork` and runs with `LinuxHostNetwork`.
///
/// Every operation is idempotent: it observes first and changes only what differs, so calling it again (after a
/// crash, a lost reply, a peer event) is always safe.
public protocol HostNetworking: Sendable {
    /// Brings the bridge (address, MTU, up) and the tunnel mesh to `config`: creates what is missing, fixes what
    /// differs, removes tunnels to peers no longer listed. Also the way to apply peer changes.
    func ensureNetwork(_ config: HostNetworkConfig) async throws -> NetworkReport

    /// Checks the host against `config` without changing anything; returns every failed check (empty: all good).
    func verify(_ config: HostNetworkConfig) async throws -> [VerifyFailure]

    /// Refuses (`invalidConfiguration`, saying why) a namespace that must never receive a container's interface:
    /// not a network namespace, outside the places runtimes keep them, or the host's own (see `NamespaceGuard`).
    /// Callers check before they lease anything for the container; `attach` checks again on the descriptor it uses.
    func checkNamespace(_ namespace: NetworkNamespace) async throws

    /// Connects a container: veth pair with the host end on the bridge, the other end created in the container's
    /// namespace with the requested name, address, MTU and a default route via the gateway. Fixes differences of a
    /// pair that is already this container's; refuses (`conflict`) when a link of that name leads elsewhere. On
    /// failure, removes what this call created and nothing else. The namespace is opened and checked once and every
    /// step enters that one (whatever its path leads to meanwhile); with `namespaceIdentity` set, another namespace
    /// at the path is refused (`namespaceReplaced`). The result names the namespace plumbed.
    func attach(_ attachment: ContainerAttachment) async throws -> AttachedContainer

    /// What differs from `attachment` (empty: attached as asked), without changing anything; a namespace at the path
    /// that is not `namespaceIdentity` is one difference, and nothing in it is looked at.
    func inspect(_ attachment: ContainerAttachment) async throws -> [String]

    /// The host ends of container veths on `bridge`, by the names netlease gives them (keyed, or an older
    /// release's): what is plumbed, to compare with what the agent recorded.
    func containerPorts(bridge: String) async throws -> [String]

    /// Removes the container's veth pair (deleting the host end deletes both) when its peer is `link.ifname` in
    /// `link.namespace`; harmless when it is gone; `conflict` when a link of that name leads elsewhere. A namespace at
    /// the path that is not `link.namespaceIdentity` counts as gone.
    func detach(_ link: ContainerLink) async throws

    /// Removes what this instance created for the network, and nothing else.
    func teardown(network: String) async throws

    /// Whether `address` answers one ICMP echo within a second (doctor's check of peers' bridge addresses).
    func reachable(_ address: IPv4Address) async -> Bool
}
