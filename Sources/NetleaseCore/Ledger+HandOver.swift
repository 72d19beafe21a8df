extension Ledger {
    /// Hands an active lease of a host from one owner to another, keeping the address: how an agent gives a
    /// container an address it leased ahead of demand (and probed) under a placeholder owner. Idempotent: when
    /// `owner` already holds `address` on this host, that lease is returned (a retry after a lost reply).
    /// Refused with `conflict` when `owner` holds another address, or `address` is not `from`'s active lease on the
    /// claiming host. Never allocates and never frees: the address stays held throughout, so no cooldown applies.
    public mutating func handOver(
        network: String,
        address: IPv4Address,
        from: String,
        to owner: String,
        ifname: String,
        claim: HostClaim,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws -> Lease {
        try checkNetwork(network)
        guard claim.epoch != nil, try checkClaim(claim) != nil else {
            throw NetleaseError.badRequest("a hand-over needs the host's current epoch")
        }
        for (field, name) in [("owner", owner), ("from", from)] {
            try Names.checkOwner(name, field: field)
            guard !Lease.isBridgeOwner(name) else {
                throw NetleaseError.badRequest("field '\(field)' must not start with 'bridge:'")
            }
        }
        if !ifname.isEmpty { try Names.checkInterface(ifname, field: "ifname") }
        if let existing = books[network]!.activeLease(owner: owner) {
            guard existing.address == address, existing.host == claim.host else {
                throw NetleaseError.conflict(
                    "owner '\(owner)' already holds \(existing.address) in '\(network)' on host '\(existing.host)'"
                )
            }
            return existing
        }
        guard let record = books[network]!.record(address), record.state == .active,
            record.owner.hasSameBytes(as: from),
            record.host == claim.host
        else {
            throw NetleaseError.conflict(
                "address \(address) is not held by '\(from)' on host '\(claim.host)'; nothing to hand over"
            )
        }
        var lease = record
        lease.owner = owner
        lease.ifname = ifname
        lease.isStatic = false
        lease.created = now
        lease.renewed = now
        let updated = lease
        modifyBook(network) { $0.put(updated) }
        changes.append(.updateLease(lease))
        return lease
    }
}
