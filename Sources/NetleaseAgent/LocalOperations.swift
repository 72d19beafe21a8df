import HostNetwork
import Logging
import NetleaseClient
import NetleaseCore
import NetleaseWire

/// What local consumers (the local API, hence `netlease attach`, the CNI plugin and Docker's IPAM driver) ask of
/// the agent. Every operation needs a live session: while disconnected they fail with `unavailable`.
extension Agent {
    /// Result of ACQUIRE and ATTACH.
    public struct Handout: Sendable, Equatable {
        public var lease: Lease
        public var gateway: IPv4Address
        public var mtu: Int
        public var bridge: String
    }

    /// Probe-then-lease: every address is ARP-probed on the bridge before it is handed out. An address that answers
    /// is reported (quarantined with the MAC seen) and another is leased. A repeated request for an owner this host
    /// already served returns the same address without probing (the container itself would answer). `address` asks
    /// for that one address (refused when it is not free).
    public func acquire(
        network: String,
        owner: String,
        ifname: String,
        netns: String? = nil,
        address: IPv4Address? = nil
    ) async throws -> Handout {
        let (session, context) = try currentSession(for: network)
        let request = AcquireRequest(
            network: network,
            owner: owner,
            claim: session.claim,
            address: address,
            ifname: ifname
        )
        let known = leases.lease(network: network, owner: owner)
        for attempt in 1...max(1, configuration.maxProbeAttempts) {
            let lease = try await session.connection.acquire(request)
            if let known, known.address == lease.address.description {
                return handout(lease, context)
            }
            if let mac = try await prober.probe(lease.address, on: context.config.bridge) {
                logger.warning(
                    "address answered an ARP probe; quarantining it and leasing another",
                    metadata: [
                        "network": "\(network)", "address": "\(lease.address)", "mac": "\(mac)",
                        "attempt": "\(attempt)",
                    ]
                )
                _ = try await session.connection.reportConflict(
                    network: network,
                    address: lease.address,
                    mac: mac,
                    claim: session.claim
                )
                continue
            }
            try leases.put(
                LocalLease(
                    network: network,
                    owner: owner,
                    address: lease.address,
                    prefix: lease.prefix,
                    ifname: ifname,
                    netns: netns
                )
            )
            return handout(lease, context)
        }
        throw NetleaseError(
            .conflict,
            "\(configuration.maxProbeAttempts) addresses in a row answered ARP probes on \(context.config.bridge); "
                + "something on the bridge uses addresses outside netlease (see 'netlease leases --state conflict')"
        )
    }

    /// Releases an owner's lease (idempotent).
    public func release(network: String, owner: String) async throws {
        let (session, _) = try currentSession(for: network)
        try await session.connection.release(ReleaseRequest(network: network, owner: owner, claim: session.claim))
        try leases.remove(network: network, owner: owner)
    }

    /// Leases (probe included) and plumbs the container in one step; idempotent for the same owner. The namespace
    /// and interface name are checked before anything is leased: a refused request costs no address.
    public func attach(network: String, owner: String, netns: String, ifname: String) async throws -> Handout {
        let (_, context) = try currentSession(for: network)
        let namespace = NetworkNamespace(argument: netns)
        guard Names.isValidInterface(ifname) else {
            throw NetleaseError(.badRequest, "'\(ifname)' is not an interface name (1-15 bytes, no space, '/' or ':')")
        }
        do {
            try await hostNetwork.checkNamespace(namespace)
        } catch let error as HostNetworkError {
            throw NetleaseError(.badRequest, "cannot attach into \(netns): \(error.message)")
        }
        let handout = try await acquire(network: network, owner: owner, ifname: ifname, netns: netns)
        do {
            let attached = try await hostNetwork.attach(
                ContainerAttachment(
                    network: network,
                    owner: owner,
                    namespace: namespace,
                    ifname: ifname,
                    address: handout.lease.address,
                    prefix: handout.lease.prefix,
                    gateway: context.bridgeAddress,
                    bridge: context.config.bridge,
                    mtu: context.mtu,
                    naming: naming
                )
            )
            logger.info(
                "container attached",
                metadata: [
                    "network": "\(network)", "owner": "\(owner)", "address": "\(handout.lease.address)",
                    "veth": "\(attached.hostInterface)", "netns": "\(netns)",
                ]
            )
            return Handout(lease: handout.lease, gateway: handout.gateway, mtu: attached.mtu, bridge: handout.bridge)
        } catch {
            logger.error("plumbing failed; releasing the lease", metadata: ["owner": "\(owner)", "error": "\(error)"])
            try? await hostNetwork.detach(
                ContainerLink(
                    network: network,
                    owner: owner,
                    namespace: namespace,
                    ifname: ifname,
                    naming: naming
                )
            )
            try? await release(network: network, owner: owner)
            throw NetleaseError(.internalError, "cannot plumb the container: \(error)")
        }
    }

    /// Removes the container's interface and releases its lease (idempotent). The interface goes even while the
    /// coordinator is unreachable; the release then fails with `unavailable` and a repeated detach finishes it.
    public func detach(network: String, owner: String) async throws {
        guard configuration.networks.contains(network) else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(network)'")
        }
        if let link = leases.lease(network: network, owner: owner).flatMap(containerLink(of:)) {
            try await hostNetwork.detach(link)
        }
        try await release(network: network, owner: owner)
        logger.info("container detached", metadata: ["network": "\(network)", "owner": "\(owner)"])
    }

    /// This host's leases as the coordinator has them.
    public func hostLeases(network: String?) async throws -> [Lease] {
        guard let session = state.withLock({ $0.session }) else { throw Self.disconnected }
        return try await session.connection.leases(.init(network: network, host: configuration.host))
    }

    private static let disconnected = NetleaseError(
        .unavailable,
        "the agent is not connected to a coordinator right now; retry shortly"
    )

    private func currentSession(for network: String) throws -> (Session, NetworkContext) {
        guard let session = state.withLock({ $0.session }) else { throw Self.disconnected }
        guard let context = session.networks[network] else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(network)'")
        }
        return (session, context)
    }

    /// The link the agent made for a local lease it plumbed itself; nil for leases handed to a runtime.
    func containerLink(of local: LocalLease) -> ContainerLink? {
        guard let netns = local.netns else { return nil }
        return ContainerLink(
            network: local.network,
            owner: local.owner,
            namespace: NetworkNamespace(argument: netns),
            ifname: local.ifname,
            naming: naming
        )
    }

    private func handout(_ lease: Lease, _ context: NetworkContext) -> Handout {
        Handout(lease: lease, gateway: context.bridgeAddress, mtu: context.mtu, bridge: context.config.bridge)
    }
}
