import HostNetwork
import Logging
import NetleaseClient
import NetleaseCore
import NetleaseWire

/// What local consumers (the local API, hence `netlease attach`, the CNI plugin and Docker's IPAM driver) ask of
/// the agent. Every operation needs a live session: while disconnected they fail with `unavailable`.
///
/// Design notes:
/// - Requests of one (network, owner) run one at a time (`OwnerLocks`), so a repeat never races its original.
/// - Everything that can be checked without leasing is checked first (namespace, interface name), so a refused
///   request costs no address.
/// - A request that fails undoes only what it made itself: a lease it created is released, a veth pair it created
///   is removed (by `HostNetworking.attach`); a lease or container of an earlier request is never touched.
/// - A new lease gets a `pending` record before the coordinator is asked; it becomes `ready` once handed out (for
///   ATTACH: once plumbed). A crash leaves the pending record, and the next session undoes that request
///   (`recoverInterruptedRequests`).
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
        try checkOwner(owner)
        return try await ownerLocks.withLock(LocalLease.key(network: network, owner: owner)) {
            let leased = try await lease(
                network: network,
                owner: owner,
                ifname: ifname,
                netns: netns,
                address: address,
                plumbing: false
            )
            return leased.handout
        }
    }

    /// Releases an owner's lease (idempotent).
    public func release(network: String, owner: String) async throws {
        try checkOwner(owner)
        try await ownerLocks.withLock(LocalLease.key(network: network, owner: owner)) {
            try await releaseHeld(network: network, owner: owner)
        }
    }

    /// Leases (probe included) and plumbs the container in one step; idempotent for the same owner. The namespace
    /// and interface name are checked before anything is leased: a refused request costs no address. When the
    /// plumbing fails, a lease this request created is released; an earlier request's lease and container stay.
    public func attach(network: String, owner: String, netns: String, ifname: String) async throws -> Handout {
        try checkOwner(owner)
        _ = try currentSession(for: network)
        let namespace = NetworkNamespace(argument: netns)
        guard Names.isValidInterface(ifname) else {
            throw NetleaseError(.badRequest, "'\(ifname)' is not an interface name (1-15 bytes, no space, '/' or ':')")
        }
        do {
            try await hostNetwork.checkNamespace(namespace)
        } catch let error as HostNetworkError {
            throw NetleaseError(.badRequest, "cannot attach into \(netns): \(error.message)")
        }
        return try await ownerLocks.withLock(LocalLease.key(network: network, owner: owner)) {
            let leased = try await lease(
                network: network,
                owner: owner,
                ifname: ifname,
                netns: netns,
                address: nil,
                plumbing: true
            )
            let (_, context) = try currentSession(for: network)
            let attachment = ContainerAttachment(
                network: network,
                owner: owner,
                namespace: namespace,
                ifname: ifname,
                address: leased.handout.lease.address,
                prefix: leased.handout.lease.prefix,
                gateway: context.bridgeAddress,
                bridge: context.config.bridge,
                mtu: context.mtu,
                naming: naming
            )
            var attached: AttachedContainer?
            do {
                attached = try await hostNetwork.attach(attachment)
                try leases.put(
                    LocalLease(
                        network: network,
                        owner: owner,
                        address: leased.handout.lease.address,
                        prefix: leased.handout.lease.prefix,
                        ifname: ifname,
                        netns: netns,
                        state: .ready,
                        mac: attached?.containerMAC,
                        netnsIdentity: attached?.namespaceIdentity
                    )
                )
            } catch {
                logger.error(
                    "plumbing failed",
                    metadata: [
                        "network": "\(network)", "owner": "\(owner)", "netns": "\(netns)", "error": "\(error)",
                        "lease": "\(leased.created ? "released: this request made it" : "kept: an earlier request's")",
                    ]
                )
                if attached?.created == true { try? await hostNetwork.detach(attachment.link) }
                if leased.created { await undoRequest(network: network, owner: owner) }
                if let error = error as? HostNetworkError, error.code == .conflict {
                    throw NetleaseError(.conflict, "cannot plumb the container: \(error.message)")
                }
                throw NetleaseError(.internalError, "cannot plumb the container: \(error)")
            }
            logger.info(
                "container attached",
                metadata: [
                    "network": "\(network)", "owner": "\(owner)", "address": "\(leased.handout.lease.address)",
                    "veth": "\(attached?.hostInterface ?? "")", "netns": "\(netns)",
                ]
            )
            return Handout(
                lease: leased.handout.lease,
                gateway: leased.handout.gateway,
                mtu: attached?.mtu ?? 0,
                bridge: leased.handout.bridge
            )
        }
    }

    /// Releases `owner`'s lease for a release deferred earlier (Docker's, while the coordinator was out of reach),
    /// unless it is no longer due or this host recorded the owner again meanwhile (an endpoint started again with
    /// the same MAC). Decided under the owner's lock, so a request of that owner in flight finishes first and its
    /// lease stays. Whether it released.
    func releaseDeferred(network: String, owner: String, stillDue: () -> Bool) async throws -> Bool {
        try checkOwner(owner)
        return try await ownerLocks.withLock(LocalLease.key(network: network, owner: owner)) {
            guard stillDue(), leases.lease(network: network, owner: owner) == nil else { return false }
            try await releaseHeld(network: network, owner: owner)
            return true
        }
    }

    /// Removes the container's interface and releases its lease (idempotent). The interface goes even while the
    /// coordinator is unreachable; the release then fails with `unavailable` and a repeated detach finishes it. An
    /// interface that does not lead into the recorded namespace is not this container's: it stays, and so does the
    /// lease (`conflict`).
    public func detach(network: String, owner: String) async throws {
        try checkOwner(owner)
        guard configuration.networks.contains(network) else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(network)'")
        }
        try await ownerLocks.withLock(LocalLease.key(network: network, owner: owner)) {
            if let link = leases.lease(network: network, owner: owner).flatMap(containerLink(of:)) {
                do {
                    try await hostNetwork.detach(link)
                } catch let error as HostNetworkError where error.code == .conflict {
                    throw NetleaseError(.conflict, "cannot detach '\(owner)': \(error.message)")
                }
            }
            try await releaseHeld(network: network, owner: owner)
            logger.info("container detached", metadata: ["network": "\(network)", "owner": "\(owner)"])
        }
    }

    /// This host's leases as the coordinator has them.
    public func hostLeases(network: String?) async throws -> [Lease] {
        guard let session = state.withLock({ $0.session }) else { throw Self.disconnected }
        return try await session.connection.leases(.init(network: network, host: configuration.host))
    }

    // MARK: one owner's request (its lock held)

    /// What leasing did, so a caller that fails afterwards undoes only its own part.
    struct Leased: Sendable {
        var handout: Handout
        /// Whether this request made the lease (false: it was an earlier request's, found in the local record).
        var created: Bool
    }

    /// The owner's lease: the recorded one when the coordinator confirms it, otherwise a new one — from the pool
    /// (re-checked briefly, then handed over by the coordinator; an empty pool's next fill in flight is awaited) or,
    /// when there is none, leased and probed in full. A new lease is recorded `pending` before the coordinator is asked, and `ready` once handed out — unless
    /// `plumbing`, where the caller marks it ready after plumbing. Answers from the owner's own container (by the
    /// MAC this host gives it) are not conflicts.
    private func lease(
        network: String,
        owner: String,
        ifname: String,
        netns: String?,
        address: IPv4Address?,
        plumbing: Bool
    ) async throws
        -> Leased
    {
        let (session, context) = try currentSession(for: network)
        if let known = leases.lease(network: network, owner: owner) { try checkKind(of: known, netns: netns) }
        let request = AcquireRequest(
            network: network,
            owner: owner,
            claim: session.claim,
            address: address,
            ifname: ifname
        )
        if let known = leases.lease(network: network, owner: owner), known.state == .ready,
            let address = known.ipv4
        {
            let lease = try await session.connection.acquire(request)
            if lease.address == address { return Leased(handout: handout(lease, context), created: false) }
            logger.warning(
                "the coordinator holds another address for an owner recorded here",
                metadata: [
                    "network": "\(network)", "owner": "\(owner)", "recorded": "\(address)", "now": "\(lease.address)",
                ]
            )
        }
        let expected = expectedMAC(network: network, owner: owner, netns: netns)
        let ignoring: Set<String> = expected.map { [$0] } ?? []
        // A runtime's endpoint (Docker) is recorded with its MAC now: the bridge watch judges claims by it. A
        // container this agent plumbs gets its MAC recorded once plumbed.
        let runtimeMAC = netns == nil ? expected : nil
        pool: while let entry = await nextPooled(network: network, address: address) {
            defer { unclaim(entry) }
            switch try await handOver(
                entry,
                to: owner,
                ifname: ifname,
                netns: netns,
                plumbing: plumbing,
                ignoring: ignoring,
                mac: runtimeMAC
            ) {
            case .handedOver(let lease):
                wakePool()
                return Leased(handout: handout(lease, context), created: true)
            case .lost:
                continue
            case .ownerRefused:
                break pool
            }
        }
        wakePool()
        var record = LocalLease(
            network: network,
            owner: owner,
            address: nil,
            prefix: context.spec.subnet.prefix,
            ifname: ifname,
            netns: netns,
            state: .pending,
            mac: runtimeMAC
        )
        try leases.put(record)
        do {
            for attempt in 1...max(1, configuration.maxProbeAttempts) {
                let lease = try await session.connection.acquire(request)
                record.address = lease.address.description
                record.prefix = lease.prefix
                try leases.put(record)
                if let mac = try await prober.probe(
                    lease.address,
                    on: context.config.bridge,
                    options: configuration.probe,
                    ignoring: ignoring
                ) {
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
                if !plumbing {
                    record.state = .ready
                    try leases.put(record)
                }
                return Leased(handout: handout(lease, context), created: true)
            }
            throw NetleaseError(
                .conflict,
                "\(configuration.maxProbeAttempts) addresses in a row answered ARP probes on \(context.config.bridge); "
                    + "something on the bridge uses addresses outside netlease "
                    + "(see 'netlease leases --state conflict')"
            )
        } catch {
            await undoRequest(network: network, owner: owner)
            throw error
        }
    }

    /// How handing a pooled address over ended.
    private enum HandOver {
        case handedOver(Lease)
        /// The address answered its re-check (quarantined) or is no longer the placeholder's: it left the pool, and
        /// the caller tries the next one.
        case lost
        /// The coordinator refused the owner, not the address: the owner holds another address, on this host or
        /// another. The address stays pooled, and the request goes the way it would without a pool (the coordinator
        /// returns the owner's lease on this host, or refuses it for its own reason).
        case ownerRefused
    }

    /// Gives a pooled address to `owner`: re-checks it, then asks the coordinator to hand the placeholder's lease
    /// over.
    private func handOver(
        _ entry: LocalLease,
        to owner: String,
        ifname: String,
        netns: String?,
        plumbing: Bool,
        ignoring: Set<String>,
        mac: String?
    ) async throws -> HandOver {
        let (session, context) = try currentSession(for: entry.network)
        guard let address = entry.ipv4 else { return .lost }
        var record = LocalLease(
            network: entry.network,
            owner: owner,
            address: address,
            prefix: entry.prefix,
            ifname: ifname,
            netns: netns,
            state: .pending,
            mac: mac,
            from: entry.owner
        )
        try leases.put(record)
        do {
            if let mac = try await prober.probe(
                address,
                on: context.config.bridge,
                options: configuration.recheck,
                ignoring: ignoring
            ) {
                logger.warning(
                    "a pooled address answered its re-check; quarantining it",
                    metadata: [
                        "network": "\(entry.network)", "address": "\(address)", "mac": "\(mac)",
                    ]
                )
                _ = try await session.connection.reportConflict(
                    network: entry.network,
                    address: address,
                    mac: mac,
                    claim: session.claim
                )
                try leases.update(removing: [(entry.network, entry.owner), (entry.network, owner)], putting: nil)
                return .lost
            }
            let lease: Lease
            do {
                lease = try await session.connection.acquire(
                    AcquireRequest(
                        network: entry.network,
                        owner: owner,
                        claim: session.claim,
                        address: address,
                        ifname: ifname,
                        from: entry.owner
                    )
                )
            } catch let error as NetleaseError where error.code == .conflict {
                // Either side can be refused. While the placeholder still holds the address, the owner was: the
                // hand-over changed nothing, and dropping the address here would leave its lease held at the
                // coordinator with no record — every pooled address in turn, for one request.
                if try await holds(entry.owner, address, in: entry.network, session) {
                    logger.info(
                        "the coordinator refused the owner of a request served from the pool; the address stays pooled",
                        metadata: [
                            "network": "\(entry.network)", "owner": "\(owner)", "address": "\(address)",
                            "error": "\(error)",
                        ]
                    )
                    try leases.remove(network: entry.network, owner: owner)
                    return .ownerRefused
                }
                // The placeholder lost the address meanwhile (quarantined after a claim, reclaimed and re-leased):
                // it is no pool address any more.
                logger.warning(
                    "a pooled address is no longer this host's",
                    metadata: [
                        "network": "\(entry.network)", "address": "\(address)", "error": "\(error)",
                    ]
                )
                try leases.update(removing: [(entry.network, entry.owner), (entry.network, owner)], putting: nil)
                return .lost
            }
            record.state = plumbing ? .pending : .ready
            record.from = nil
            try leases.update(removing: [(entry.network, entry.owner)], putting: record)
            return .handedOver(lease)
        } catch {
            await undoRequest(network: entry.network, owner: owner)
            throw error
        }
    }

    /// Whether `owner` holds `address` in `network` on this host, as the coordinator has it.
    private func holds(
        _ owner: String,
        _ address: IPv4Address,
        in network: String,
        _ session: Session
    ) async throws -> Bool {
        let held = try await session.connection.leases(
            .init(network: network, host: configuration.host, state: .active, owner: owner)
        )
        return held.contains { $0.address == address }
    }

    /// Gives back a lease a failed request made and forgets its record. When the coordinator cannot be told, the
    /// pending record stays: the next session's recovery finishes the undo. A request served from the pool that
    /// failed before the hand-over leaves the pooled address where it was. When the coordinator refuses the release
    /// because the owner's lease is another host's, this host holds nothing under that owner: the record goes.
    func undoRequest(network: String, owner: String) async {
        guard let session = state.withLock({ $0.session }) else { return }
        let from = leases.lease(network: network, owner: owner)?.from
        do {
            let released = try await session.connection.release(
                ReleaseRequest(network: network, owner: owner, claim: session.claim)
            )
            var removing = [(network: network, owner: owner)]
            if let from, released != nil { removing.append((network, from)) }
            try leases.update(removing: removing, putting: nil)
        } catch let error as NetleaseError where error.code == .conflict {
            logger.info(
                "a failed request's owner is leased on another host; nothing of it to give back",
                metadata: ["network": "\(network)", "owner": "\(owner)", "error": "\(error)"]
            )
            try? leases.remove(network: network, owner: owner)
        } catch {
            logger.error(
                "cannot give back the lease of a failed request; it is undone at the next reconnect",
                metadata: ["network": "\(network)", "owner": "\(owner)", "error": "\(error)"]
            )
        }
    }

    private func releaseHeld(network: String, owner: String) async throws {
        let (session, _) = try currentSession(for: network)
        try await session.connection.release(ReleaseRequest(network: network, owner: owner, claim: session.claim))
        try leases.remove(network: network, owner: owner)
    }

    static let disconnected = NetleaseError(
        .unavailable,
        "the agent is not connected to a coordinator right now; retry shortly"
    )

    /// The coordinator's owner rules (one canonical byte form: NFC, no control characters, 1-256 bytes; no
    /// `bridge:`), applied before the owner is looked up here: Swift compares strings canonically, so an owner in
    /// another normal form would find the record of the canonical one (and DETACH remove its container's veth)
    /// before the coordinator refused it. Plus the agent's own: no `pool:`.
    private func checkOwner(_ owner: String) throws {
        guard !owner.isEmpty else { throw NetleaseError(.badRequest, "owner must not be empty") }
        try Names.checkOwner(owner)
        guard !Lease.isBridgeOwner(owner) else {
            throw NetleaseError(.badRequest, "owner ids starting with 'bridge:' are the hosts' bridge addresses")
        }
        guard !owner.hasPrefix("pool:") else {
            throw NetleaseError(.badRequest, "owner ids starting with 'pool:' are the agents' address pools")
        }
    }

    /// A request serves only an owner recorded by its own kind: ATTACH one that ATTACH recorded (with the
    /// container's namespace), ACQUIRE (hence Docker and the CNI plugin) one without a namespace. Otherwise the
    /// owner's live address would go to a second consumer, confirmed by the coordinator and never probed.
    private func checkKind(of known: LocalLease, netns: String?) throws {
        let address = known.address.isEmpty ? "" : " \(known.address)"
        switch (known.netns, netns) {
        case (nil, nil), (.some, .some):
            return
        case (let held?, nil):
            throw NetleaseError(
                .conflict,
                "owner '\(known.owner)' holds\(address) for a container ATTACH plumbed into \(held); ACQUIRE would "
                    + "hand that address to someone else (DETACH it first, or use another owner)"
            )
        case (nil, _?):
            throw NetleaseError(
                .conflict,
                "owner '\(known.owner)' holds\(address) handed out by ACQUIRE (to a runtime: Docker, a CNI plugin); "
                    + "ATTACH would plumb that address into a second container (RELEASE it first, or use another owner)"
            )
        }
    }

    func currentSession(for network: String) throws -> (Session, NetworkContext) {
        guard let session = state.withLock({ $0.session }) else { throw Self.disconnected }
        guard let context = session.networks[network] else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(network)'")
        }
        return (session, context)
    }

    /// The MAC the owner's container answers ARP with, when this host knows it: the one it gives a container it
    /// plumbs (`netns`), or a Docker endpoint's, which its owner names. Nil for CNI leases (the agent never learns
    /// their MAC).
    func expectedMAC(network: String, owner: String, netns: String?) -> String? {
        if netns != nil { return naming.containerMAC(network: network, owner: owner) }
        guard owner.hasPrefix(DockerIPAMPlugin.ownerPrefix) else { return nil }
        return DockerIPAMPlugin.canonicalMAC(String(owner.dropFirst(DockerIPAMPlugin.ownerPrefix.count)))
    }

    /// The link the agent made for a local lease it plumbed itself; nil for leases handed to a runtime.
    func containerLink(of local: LocalLease) -> ContainerLink? {
        guard let netns = local.netns else { return nil }
        return ContainerLink(
            network: local.network,
            owner: local.owner,
            namespace: NetworkNamespace(argument: netns),
            ifname: local.ifname,
            naming: naming,
            namespaceIdentity: local.netnsIdentity
        )
    }

    private func handout(_ lease: Lease, _ context: NetworkContext) -> Handout {
        Handout(lease: lease, gateway: context.bridgeAddress, mtu: context.mtu, bridge: context.config.bridge)
    }
}
