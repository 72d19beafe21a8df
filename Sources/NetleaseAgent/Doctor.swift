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
            if configuration.poolSize > 0 { checks.append(poolCheck(name)) }
            checks.append(arpWatchCheck(name, bridge: config.bridge))
        }
        checks.append(await leasesCheck(session.connection))
        checks.append(await containersCheck(session))
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

    /// The leases recorded here against the coordinator's active leases of this host, both ways: a record the
    /// coordinator does not agree with, a lease of this host no record names (leaked by a request that never
    /// finished, or made by an admin), and a request interrupted and not undone yet. Requests in flight while the
    /// check runs are left out: their record and lease change under it.
    private func leasesCheck(_ connection: NetleaseConnection) async -> DoctorCheck {
        let busyBefore = ownerLocks.busy
        let remote: [Lease]
        do {
            // Listed before the records are read: a lease is recorded before it is asked for, so whatever the
            // listing shows has its record by then.
            remote = try await connection.leases(.init(host: configuration.host, state: .active))
        } catch {
            return DoctorCheck(name: "leases", ok: false, detail: "cannot list leases: \(error)")
        }
        let local = leases.all.filter { configuration.networks.contains($0.network) }
        let inFlight = busyBefore.union(ownerLocks.busy).union(state.withLock { $0.claimedPool })
        var problems: [String] = []
        for record in local where !inFlight.contains(record.key) {
            if record.state == .pending {
                problems.append(
                    "\(record.network) '\(record.owner)': a request was interrupted and is not undone yet "
                        + "(it is at the next reconnect)"
                )
                continue
            }
            let match = remote.first { $0.network == record.network && $0.owner == record.owner }
            if match?.address.description != record.address {
                problems.append(
                    "\(record.network) '\(record.owner)' uses \(record.address) here, coordinator: "
                        + (match.map { "\($0.address)" } ?? "no lease")
                )
            }
        }
        let recorded = Set(local.map(\.key))
        for lease in remote where !lease.isBridge && configuration.networks.contains(lease.network) {
            let key = LocalLease.key(network: lease.network, owner: lease.owner)
            guard !recorded.contains(key), !inFlight.contains(key) else { continue }
            problems.append(
                "\(lease.network) \(lease.address) is leased to this host for '\(lease.owner)', which this agent has "
                    + "no record of; release it if nothing uses it"
            )
        }
        problems += state.withLock { $0.unrepaired }
        return DoctorCheck(
            name: "leases",
            ok: problems.isEmpty,
            detail: problems.isEmpty
                ? "\(local.count) local lease(s) agree with the coordinator"
                : problems.joined(separator: "; ")
        )
    }

    /// The address pool: how many probed addresses wait out of the size it is kept at (less than `--pool-size` when
    /// the network's free addresses cap it, then said with why), and why the last fill failed.
    private func poolCheck(_ name: String) -> DoctorCheck {
        let ready = leases.all.filter { $0.network == name && $0.state == .pooled }.count
        let (error, target) = state.withLock { ($0.poolErrors[name], $0.pool.targets[name]) }
        let size = target?.size ?? configuration.poolSize
        return DoctorCheck(
            name: "\(name)/pool",
            ok: error == nil,
            detail: "\(ready) of \(size) probed address(es) ready"
                + (target?.capReason.map { " (\($0))" } ?? "")
                + (error.map { "; the last fill failed: \($0)" } ?? "")
        )
    }

    /// The watch of the bridge for foreign claims on this host's addresses (RFC 5227 ongoing detection).
    private func arpWatchCheck(_ name: String, bridge: String) -> DoctorCheck {
        let error = state.withLock { $0.watchErrors[name] }
        let claims = foreignClaims(network: name)
        var problems = claims
        if let error { problems.insert("cannot watch \(bridge): \(error)", at: 0) }
        return DoctorCheck(
            name: "\(name)/arp-watch",
            ok: problems.isEmpty,
            detail: problems.isEmpty
                ? "watching \(bridge); no foreign device claims an address of this host"
                : problems.joined(separator: "; ") + (claims.isEmpty ? "" : " (quarantined; detach to clear)")
        )
    }

    /// Every container this agent plumbed, inspected against its record, and the other way round: container veths
    /// on a bridge that no record names (left behind when the state directory was lost, or made by hand).
    private func containersCheck(_ session: Session) async -> DoctorCheck {
        let inFlight = ownerLocks.busy
        var problems: [String] = []
        var count = 0
        for (name, context) in session.networks.sorted(by: { $0.key < $1.key }) {
            do {
                let expected = Set(
                    leases.all.filter { $0.network == name && $0.netns != nil }.flatMap {
                        [
                            naming.hostVeth(network: name, owner: $0.owner),
                            InterfaceNames.unkeyedContainerVeth(network: name, owner: $0.owner),
                        ]
                    }
                )
                let found = try await hostNetwork.containerPorts(bridge: context.config.bridge)
                for port in found where !expected.contains(port) {
                    problems.append(
                        "\(name): veth \(port) on \(context.config.bridge) belongs to no recorded container"
                    )
                }
            } catch {
                problems.append("\(name): cannot list the veths on \(context.config.bridge): \(error)")
            }
        }
        for record in leases.all where record.state == .ready && !inFlight.contains(record.key) {
            guard let netns = record.netns, let context = session.networks[record.network],
                let attachment = attachment(of: record, in: context)
            else { continue }
            count += 1
            do {
                let found = try await hostNetwork.inspect(attachment)
                if !found.isEmpty {
                    problems.append("\(record.network) '\(record.owner)' (\(netns)): " + found.joined(separator: ", "))
                }
            } catch {
                problems.append("\(record.network) '\(record.owner)': cannot inspect: \(error)")
            }
        }
        return DoctorCheck(
            name: "containers",
            ok: problems.isEmpty,
            detail: problems.isEmpty
                ? "\(count) attached container(s) plumbed as recorded"
                : problems.joined(separator: "; ")
        )
    }
}
