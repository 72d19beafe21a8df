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

    /// Connects a container: veth pair with the host end on the bridge, the other end moved into the container's
    /// namespace with the requested name, address, MTU and a default route via the gateway.
    func attach(_ attachment: ContainerAttachment) async throws -> AttachedContainer

    /// Removes the container's veth pair (deleting the host end deletes both); harmless when it is gone.
    func detach(network: String, owner: String) async throws

    /// Removes what this instance created for the network, and nothing else.
    func teardown(network: String) async throws

    /// Whether `address` answers one ICMP echo within a second (doctor's check of peers' bridge addresses).
    func reachable(_ address: IPv4Address) async -> Bool
}
