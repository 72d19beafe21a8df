import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseWire

extension Agent {
    /// The operators' checklist, automated: coordinator session, bridge and mesh per network (against the live peer
    /// list), leases agreeing with the coordinator's view, disagreements found at reconcile.
    public func doctor() async -> [DoctorCheck] {
        let (session, directory, disagreements, lastError, store, storeWarning, readopted) = state.withLock {
            ($0.session, $0.directory, $0.disagreements, $0.lastError, $0.store, $0.storeWarning, $0.readopted)
        }
        guard let session else {
            return [DoctorCheck(name: "coordinator", ok: false, detail: "not connected: \(lastError ?? "connecting")")]
        }
        var checks: [DoctorCheck] = []
        checks.append(DoctorCheck(name: "coordinator", ok: true, detail: "connected, epoch \(session.epoch)"))
        checks.append(
            DoctorCheck(
                name: "store",
                ok: storeWarning == nil,
                detail: storeWarning ?? "store \(store?.id ?? "?") at generation \(store?.generation ?? 0) when joined"
            )
        )
        for name in configuration.networks {
            guard let context = session.networks[name] else { continue }
            var config = context.config
            if let directory { config.peers = directory.peers(of: name) }
            checks += await hostNetworkChecks(name, context: context, config: config)
            checks.append(await peerBridgesCheck(name, peers: Set(config.peers.keys), connection: session.connection))
        }
        checks.append(await leasesCheck(session.connection))
        checks.append(
            DoctorCheck(
                name: "reconcile",
                ok: disagreements.isEmpty,
                detail: disagreements.isEmpty
                    ? "no disagreement at the last reconnect"
                        + (readopted > 0 ? "; \(readopted) lease(s) the coordinator had lost were recorded again" : "")
                    : disagreements.joined(separator: "; ")
            )
        )
        return checks
    }

    /// Bridge and mesh as built, verified against the live peer list: one passing check, or one per failure.
    private func hostNetworkChecks(
        _ name: String,
        context: NetworkContext,
        config: HostNetworkConfig
    ) async
        -> [DoctorCheck]
    {
        let failures: [VerifyFailure]
        do {
            failures = try await hostNetwork.verify(config)
        } catch {
            return [DoctorCheck(name: "\(name)/host-network", ok: false, detail: "cannot inspect: \(error)")]
        }
        guard failures.isEmpty else {
            return failures.map { DoctorCheck(name: "\(name)/\($0.check.rawValue)", ok: false, detail: $0.detail) }
        }
        return [
            DoctorCheck(
                name: "\(name)/host-network",
                ok: true,
                detail: "bridge \(config.bridge) up with \(context.bridgeAddress)/\(context.spec.subnet.prefix), "
                    + "mtu \(context.mtu); \(context.spec.tunnel.rawValue) mesh matches \(config.peers.count) peer(s)"
            )
        ]
    }

    /// Each up peer's bridge address must answer a ping across the tunnel.
    private func peerBridgesCheck(
        _ name: String,
        peers: Set<String>,
        connection: NetleaseConnection
    ) async
        -> DoctorCheck
    {
        do {
            let bridges = try await connection.leases(.init(network: name, state: .active))
                .filter { $0.isBridge && peers.contains($0.host) }
            var silent: [String] = []
            for bridge in bridges.sorted(by: { $0.host < $1.host }) {
                if await !hostNetwork.reachable(bridge.address) { silent.append("\(bridge.host) (\(bridge.address))") }
            }
            return DoctorCheck(
                name: "\(name)/peer-bridges",
                ok: silent.isEmpty,
                detail: silent.isEmpty
                    ? "\(bridges.count) peer bridge address(es) answer ping"
                    : "no answer from " + silent.joined(separator: ", ")
            )
        } catch {
            return DoctorCheck(name: "\(name)/peer-bridges", ok: false, detail: "cannot list peers: \(error)")
        }
    }

    /// The leases recorded here against the coordinator's active leases of this host.
    private func leasesCheck(_ connection: NetleaseConnection) async -> DoctorCheck {
        do {
            let remote = try await connection.leases(.init(host: configuration.host, state: .active))
            var mismatches: [String] = []
            let local = leases.all
            for lease in local where configuration.networks.contains(lease.network) {
                let match = remote.first { $0.network == lease.network && $0.owner == lease.owner }
                if match?.address.description != lease.address {
                    mismatches.append(
                        "\(lease.network) '\(lease.owner)' uses \(lease.address) here, coordinator: "
                            + (match.map { "\($0.address)" } ?? "no lease")
                    )
                }
            }
            return DoctorCheck(
                name: "leases",
                ok: mismatches.isEmpty,
                detail: mismatches.isEmpty
                    ? "\(local.count) local lease(s) agree with the coordinator"
                    : mismatches.joined(separator: "; ")
            )
        } catch {
            return DoctorCheck(name: "leases", ok: false, detail: "cannot list leases: \(error)")
        }
    }
}
