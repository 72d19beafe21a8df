/// What the coordinator thinks of one lease an agent says it uses.
public enum ReconcileOutcome: Sendable, Equatable {
    /// The ledger agrees.
    case held(Lease)
    /// The address was free or cooling down and nobody else held it: recorded for the owner again.
    case adopted(Lease)
    /// Someone else holds the address (or it is reserved or quarantined): the agent must not keep using it.
    case taken(by: Lease)
    /// The owner holds a different address in this network.
    case moved(to: Lease)
}

extension Ledger {
    /// An agent reports a lease it actually uses (after a reconnect or a coordinator restore). Never overwrites or
    /// frees anyone else's record: disagreements are answered, not resolved silently.
    public mutating func reconcile(
        network: String,
        owner: String,
        address: IPv4Address,
        ifname: String,
        claim: HostClaim,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws -> ReconcileOutcome {
        try checkNetwork(network)
        let spec = books[network]!.spec
        guard claim.epoch != nil, try checkClaim(claim, in: network) != nil else {
            throw NetleaseError.badRequest("reconcile needs the host's current epoch")
        }
        try Names.checkOwner(owner)
        guard !Lease.isBridgeOwner(owner) else {
            throw NetleaseError.badRequest("field 'owner' must not start with 'bridge:'")
        }
        if !ifname.isEmpty { try Names.checkInterface(ifname, field: "ifname") }
        guard spec.subnet.isHostAddress(address), !spec.isExcluded(address) else {
            throw NetleaseError.badRequest("address \(address) is not leasable in \(network) (\(spec.subnet))")
        }
        if let current = books[network]!.activeLease(owner: owner), current.address != address {
            return .moved(to: current)
        }
        let existing = books[network]!.record(address)
        if let record = existing {
            switch record.state {
            case .active where record.owner.hasSameBytes(as: owner) && record.host == claim.host:
                return .held(record)
            case .active, .reserved, .conflict:
                return .taken(by: record)
            case .cooldown where record.host != claim.host:
                // The cooldown protects a holder on another host (or none), which may still use the address: a
                // host lost in a partition keeps its containers running.
                return .taken(by: record)
            case .cooldown:
                break
            }
        }
        let lease = Lease(
            network: network,
            address: address,
            prefix: spec.subnet.prefix,
            state: .active,
            host: claim.host,
            owner: owner,
            ifname: ifname,
            isStatic: false,
            created: now,
            renewed: now
        )
        changes.append(existing == nil ? .insertLease(lease) : .updateLease(lease))
        modifyBook(network) { $0.put(lease) }
        return .adopted(lease)
    }
}
