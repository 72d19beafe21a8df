import HostNetwork
import Logging
import NetleaseClient
import NetleaseCore
import NetleaseWire

extension Agent {
    /// After each join: finishes what an agent killed in the middle of a request (or cut off from the coordinator)
    /// left behind, comparing the three views of this host's leases — the coordinator's, the local records, and
    /// what is plumbed:
    /// - a `pending` record is a request that never answered its caller: its container pair (only one that leads
    ///   into the recorded namespace) is removed, its lease released, the record dropped;
    /// - a `ready` ATTACH record whose container is not plumbed as recorded is plumbed again when its namespace is
    ///   still there — the very namespace it was plumbed into, by the identity recorded then, not merely something at
    ///   the same path; otherwise it is reported (the runtime detaches dead containers). A record without that
    ///   identity (an older release's) is never re-plumbed: what its path leads to now cannot be told apart;
    /// - a lease the coordinator holds for this host that no record names is reported, never released: an admin
    ///   may have made it (`lease acquire --host`).
    /// What cannot be repaired now is kept for doctor and tried again at the next join.
    func recoverInterruptedRequests(_ control: NetleaseConnection, claim: HostClaim) async {
        var unrepaired: [String] = []
        for record in leases.all where configuration.networks.contains(record.network) {
            let key = LocalLease.key(network: record.network, owner: record.owner)
            do {
                let left = try await ownerLocks.withLock(key) { () async throws -> String? in
                    // Re-read under the lock: a request that was in flight has finished by now.
                    guard let current = leases.lease(network: record.network, owner: record.owner) else { return nil }
                    switch current.state {
                    case .pending: try await undoInterrupted(current, control: control, claim: claim)
                    case .ready: return try await replumbIfNeeded(current)
                    case .pooled: break
                    }
                    return nil
                }
                if let left { unrepaired.append("\(record.network) '\(record.owner)': \(left)") }
            } catch {
                unrepaired.append("\(record.network) '\(record.owner)': \(error)")
                logger.error(
                    "cannot repair after an interrupted request",
                    metadata: [
                        "network": "\(record.network)", "owner": "\(record.owner)", "error": "\(error)",
                    ]
                )
            }
        }
        // Pool placeholders of this host are this agent's by name: one the coordinator holds without a record (the
        // record was lost with the state directory) is given back.
        do {
            let recorded = Set(leases.all.map(\.key))
            for lease in try await control.leases(.init(host: configuration.host, state: .active))
            where isPoolOwner(lease.owner)
                && !recorded.contains(LocalLease.key(network: lease.network, owner: lease.owner))
            {
                _ = try await control.release(ReleaseRequest(network: lease.network, owner: lease.owner, claim: claim))
                logger.notice(
                    "gave back a pooled address no record named",
                    metadata: [
                        "network": "\(lease.network)", "address": "\(lease.address)",
                    ]
                )
            }
        } catch {
            unrepaired.append("cannot look for unrecorded pool addresses: \(error)")
        }
        state.withLock { $0.unrepaired = unrepaired }
    }

    private func undoInterrupted(_ record: LocalLease, control: NetleaseConnection, claim: HostClaim) async throws {
        if let link = containerLink(of: record) { try await hostNetwork.detach(link) }
        let released: Lease?
        do {
            released = try await control.release(
                ReleaseRequest(network: record.network, owner: record.owner, claim: claim)
            )
        } catch let error as NetleaseError where error.code == .conflict {
            // The owner's lease is another host's: this host holds nothing of the request to give back (a pooled
            // placeholder was never handed over and stays). The record used to stay for good, retried at every
            // reconnect and shown as unrepaired.
            try leases.remove(network: record.network, owner: record.owner)
            logger.notice(
                "forgot an interrupted request whose owner is leased on another host",
                metadata: ["network": "\(record.network)", "owner": "\(record.owner)", "error": "\(error)"]
            )
            return
        }
        // Served from the pool: when the hand-over happened, the placeholder holds nothing any more; otherwise its
        // address is still pooled and stays.
        var removing = [(network: record.network, owner: record.owner)]
        if let from = record.from, released != nil { removing.append((record.network, from)) }
        try leases.update(removing: removing, putting: nil)
        logger.notice(
            "undid a request that was interrupted",
            metadata: [
                "network": "\(record.network)", "owner": "\(record.owner)",
                "address": "\(released?.address.description ?? (record.address.isEmpty ? "-" : record.address))",
            ]
        )
    }

    /// Plumbs a recorded container again when something of it is missing and the namespace it was plumbed into is
    /// still at its path. Returns why it left a record as it is, for doctor; nil when nothing needs saying.
    private func replumbIfNeeded(_ record: LocalLease) async throws -> String? {
        guard let context = state.withLock({ $0.session?.networks[record.network] }),
            let attachment = attachment(of: record, in: context)
        else { return nil }
        let problems = try await hostNetwork.inspect(attachment)
        guard !problems.isEmpty else { return nil }
        guard record.netnsIdentity != nil else {
            let why =
                "not re-plumbed: recorded without the identity of its namespace (by an older release, or a kernel "
                + "before 5.14), so whatever is at \(attachment.namespace) now may be another namespace; attach it "
                + "again to repair it"
            logger.notice(
                "a recorded container is incomplete and not re-plumbed",
                metadata: ["network": "\(record.network)", "owner": "\(record.owner)", "why": "\(why)"]
            )
            return why
        }
        do {
            try await hostNetwork.checkNamespace(attachment.namespace)
        } catch {
            // The container is gone (or its namespace unusable): nothing to plumb; doctor shows it until the
            // runtime detaches it.
            return nil
        }
        let attached: AttachedContainer
        do {
            attached = try await hostNetwork.attach(attachment)
        } catch let error as HostNetworkError where error.code == .namespaceReplaced {
            // Another namespace took the path (`ip netns del web1; ip netns add web1`, a reused PID): the container
            // is gone and this one must not get its address. Doctor shows it until the runtime detaches it.
            logger.notice(
                "a recorded container's namespace was replaced; not plumbing the new one",
                metadata: ["network": "\(record.network)", "owner": "\(record.owner)", "why": "\(error.message)"]
            )
            return nil
        }
        logger.notice(
            "re-plumbed a container found incomplete",
            metadata: [
                "network": "\(record.network)", "owner": "\(record.owner)",
                "fixed": "\(attached.changes.joined(separator: "; "))",
            ]
        )
        return nil
    }
}

extension Agent {
    /// The container side a local record describes, in a served network; nil for a record without a namespace or
    /// an address (a plain lease, or a request that never finished).
    func attachment(of record: LocalLease, in context: NetworkContext) -> ContainerAttachment? {
        guard let netns = record.netns, let address = record.ipv4 else { return nil }
        return ContainerAttachment(
            network: record.network,
            owner: record.owner,
            namespace: NetworkNamespace(argument: netns),
            ifname: record.ifname,
            address: address,
            prefix: record.prefix,
            gateway: context.bridgeAddress,
            bridge: context.config.bridge,
            mtu: context.mtu,
            naming: naming,
            namespaceIdentity: record.netnsIdentity
        )
    }
}
