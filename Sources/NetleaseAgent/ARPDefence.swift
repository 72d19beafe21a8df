import HostNetwork
import Logging
import NetleaseClient
import NetleaseCore
import NetleaseWire

/// RFC 5227 ongoing conflict detection: the bridge is watched for ARP packets that claim an address this host
/// holds, from a MAC that is not the one holding it.
///
/// Design notes:
/// - Whose MAC is expected: a container the agent plumbed has its recorded MAC (derived from this host's key when
///   the agent made the pair); a request being plumbed, the MAC it is about to get; a Docker endpoint, the MAC
///   Docker named (its owner `docker/<MAC>`). A pooled address belongs to nobody yet, so any claim is foreign.
///   CNI leases are not judged: the agent never learns their MAC.
/// - A foreign claim is reported to the coordinator (`REPORT-CONFLICT` with the MAC), which quarantines the
///   address: it will not be handed out again after its holder releases it. A pooled address also leaves the pool;
///   a container keeps running (the agent does not unplumb it), and doctor names the conflict until the container
///   is detached.
/// - Each (address, MAC) is reported once per agent run: a device that keeps answering does not flood the
///   coordinator.
extension Agent {
    /// Watches `network`'s bridge until cancelled; a failed watch (the bridge was recreated) is opened again.
    func defend(_ network: String) async {
        while !Task.isCancelled {
            guard let bridge = state.withLock({ $0.session?.networks[network]?.config.bridge }) else { return }
            do {
                for try await claim in prober.watch(bridge) { await judge(claim, network: network) }
                state.withLock { $0.watchErrors[network] = nil }
            } catch {
                if Task.isCancelled { return }
                state.withLock { $0.watchErrors[network] = "\(error)" }
                logger.warning(
                    "cannot watch the bridge for address conflicts",
                    metadata: [
                        "network": "\(network)", "bridge": "\(bridge)", "error": "\(error)",
                    ]
                )
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Whether `claim` contradicts what this host holds, and if so, reports it.
    func judge(_ claim: ARPClaim, network: String) async {
        let holders = leases.all.filter { $0.network == network && $0.ipv4 == claim.address }
        guard !holders.isEmpty else { return }
        var judged = false
        for holder in holders {
            switch holder.state {
            case .ready, .pending:
                let expected =
                    holder.state == .ready
                    ? holder.mac
                    : (holder.mac
                        ?? holder.netns.map { _ in naming.containerMAC(network: network, owner: holder.owner) })
                guard let expected else { continue }
                if expected == claim.mac { return }
                judged = true
            case .pooled:
                judged = true
            }
        }
        guard judged else { return }
        let key = "\(network) \(claim.address) \(claim.mac)"
        let first = state.withLock { runtime -> Bool in
            guard runtime.foreignClaims[key] == nil else { return false }
            runtime.foreignClaims[key] = holders.map { "'\($0.owner)'" }.joined(separator: ", ")
            return true
        }
        guard first else { return }
        logger.error(
            "a foreign device claims an address this host holds; quarantining it",
            metadata: [
                "network": "\(network)", "address": "\(claim.address)", "mac": "\(claim.mac)",
                "holder": "\(holders.map(\.owner).joined(separator: ","))",
            ]
        )
        guard let session = state.withLock({ $0.session }) else { return }
        do {
            _ = try await session.connection.reportConflict(
                network: network,
                address: claim.address,
                mac: claim.mac,
                claim: session.claim
            )
        } catch {
            logger.error(
                "cannot report an address conflict",
                metadata: [
                    "network": "\(network)", "address": "\(claim.address)", "error": "\(error)",
                ]
            )
        }
        let claimed = state.withLock { $0.claimedPool }
        for holder in holders where holder.state == .pooled && !claimed.contains(holder.key) {
            try? leases.remove(network: network, owner: holder.owner)
            wakePool()
        }
    }

    /// Foreign claims on addresses this host still holds for containers, for doctor.
    func foreignClaims(network: String) -> [String] {
        let held = Set(leases.all.filter { $0.network == network && $0.state != .pooled }.map(\.address))
        return state.withLock { $0.foreignClaims }.compactMap { key, holders -> String? in
            let parts = key.split(separator: " ")
            guard parts.count == 3, parts[0] == network, held.contains(String(parts[1])) else { return nil }
            return "\(parts[1]) (held for \(holders)) is claimed by \(parts[2])"
        }.sorted()
    }
}
