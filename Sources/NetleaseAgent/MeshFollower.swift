import HostNetwork
import Logging
import NetleaseCore
import NetleaseWire

/// A network as built on this host: its definition, this host's bridge address, what was applied, and the MTU the
/// host network settled on.
struct NetworkContext: Sendable, Equatable {
    var spec: NetworkSpec
    var bridgeAddress: IPv4Address
    var config: HostNetworkConfig
    var mtu: Int
}

/// Builds each network's bridge and tunnel mesh, verifies it, and rebuilds it when the peers change. Verification
/// failing throws: no network is served before its host side checks out (invariant 5).
struct MeshFollower: Sendable {
    let hostNetwork: any HostNetworking
    let underlay: IPv4Address
    let logger: Logger

    /// Builds (or repairs) one network on this host and verifies it. Throws when verification fails.
    func configure(
        spec: NetworkSpec,
        bridgeAddress: IPv4Address,
        peers: [String: IPv4Address]
    ) async throws
        -> NetworkContext
    {
        let config = HostNetworkConfig(spec: spec, bridgeAddress: bridgeAddress, underlay: underlay, peers: peers)
        let report = try await hostNetwork.ensureNetwork(config)
        for change in report.changes {
            logger.info("host network changed", metadata: ["network": "\(spec.name)", "change": "\(change)"])
        }
        let failures = try await hostNetwork.verify(config)
        guard failures.isEmpty else {
            throw NetleaseError(
                .unavailable,
                "network '\(spec.name)' failed verification: "
                    + failures.map(\.description).joined(separator: "; ")
            )
        }
        logger.info(
            "network ready",
            metadata: [
                "network": "\(spec.name)", "bridge": "\(config.bridge)",
                "address": "\(bridgeAddress)/\(spec.subnet.prefix)", "peers": "\(peers.count)", "mtu": "\(report.mtu)",
            ]
        )
        return NetworkContext(spec: spec, bridgeAddress: bridgeAddress, config: config, mtu: report.mtu)
    }

    /// Reconfigures the networks whose peers in `directory` differ from the ones applied; returns all networks.
    func follow(
        _ networks: [String: NetworkContext],
        to directory: PeerDirectory
    ) async throws
        -> [String: NetworkContext]
    {
        var updated = networks
        for (name, context) in networks {
            let peers = directory.peers(of: name)
            guard peers != context.config.peers else { continue }
            updated[name] = try await configure(spec: context.spec, bridgeAddress: context.bridgeAddress, peers: peers)
            logger.info("mesh updated", metadata: ["network": "\(name)", "peers": "\(peers.keys.sorted())"])
        }
        return updated
    }
}

extension Agent {
    var mesh: MeshFollower {
        MeshFollower(hostNetwork: hostNetwork, underlay: configuration.underlay, logger: logger)
    }

    /// Runs `body` while no other change of the networks' host side runs: building them at join, following the
    /// peers, a resync round. Each reads the configuration it applies inside `body`, so none applies one that another
    /// has just replaced — a resync that read the peers before a host joined used to remove the new peer's
    /// forwarding entry right after the mesh update added it (and count that as a repair), leaving the new peer
    /// unreachable until the next round.
    func withMeshLock<T: Sendable, Failure: Error>(_ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        try await meshLock.withLock("mesh", body)
    }

    /// Builds every served network with the bridge address the coordinator gave this host at join.
    func buildNetworks(
        bridges: [Lease],
        specs: [String: NetworkSpec],
        directory: PeerDirectory
    ) async throws
        -> [String: NetworkContext]
    {
        try await withMeshLock {
            var networks: [String: NetworkContext] = [:]
            for name in configuration.networks {
                guard let bridge = bridges.first(where: { $0.network == name }), let spec = specs[name] else {
                    throw NetleaseError(.internalError, "the coordinator gave no bridge address for '\(name)'")
                }
                networks[name] = try await mesh.configure(
                    spec: spec,
                    bridgeAddress: bridge.address,
                    peers: directory.peers(of: name)
                )
            }
            return networks
        }
    }

    /// Brings every network's mesh to the peers the directory now lists. The session may have ended meanwhile: the
    /// result is kept only for the session it was computed for.
    func updateMesh(_ directory: PeerDirectory) async throws {
        try await withMeshLock {
            guard let session = state.withLock({ $0.session }) else { return }
            let updated = try await mesh.follow(session.networks, to: directory)
            state.withLock {
                $0.directory = directory
                if $0.session?.epoch == session.epoch { $0.session?.networks = updated }
            }
        }
    }
}

extension Agent {
    /// Reacts to a network's definition changing at the coordinator. `network-deleted` for a served network: stop
    /// leasing in it at once (the local API then answers `unknown-network`); the bridge and tunnels stay for the
    /// containers still attached, and the coordinator refuses the delete while this host serves the network, so
    /// this happens only after the host was removed. `network` with settings other than the ones built here (the
    /// network was created again): throws, which ends the session; the next one joins again and builds the network
    /// with its new settings and this host's new bridge address.
    func applyNetworkEvent(_ event: Event) throws {
        switch event {
        case .networkDeleted(let name):
            let stopped = state.withLock { state -> Bool in
                guard state.session?.networks[name] != nil else { return false }
                state.session?.networks[name] = nil
                state.resyncFailures[name] = nil
                return true
            }
            guard stopped else { return }
            logger.error(
                "network deleted at the coordinator while this host serves it: no more leases in it here",
                metadata: ["network": "\(name)", "kept": "its bridge and tunnels, until configured without it"]
            )
        case .network(let spec):
            guard configuration.networks.contains(spec.name) else { return }
            let built = state.withLock { $0.session?.networks[spec.name]?.spec }
            guard built != spec else { return }
            logger.warning(
                "network changed at the coordinator: joining again to build it with its new settings",
                metadata: ["network": "\(spec.name)", "subnet": "\(spec.subnet)", "vni": "\(spec.vni)"]
            )
            throw NetleaseError(.unavailable, "network '\(spec.name)' changed at the coordinator; joining again")
        default:
            return
        }
    }
}
