/// Hosts: join (epochs, bridge addresses), heartbeat, removal and loss, and the claims agents make for them.
extension Ledger {
    public struct JoinResult: Sendable, Equatable {
        public var host: HostRecord
        public var bridges: [Lease]
    }

    /// A host (re)joins: new epoch, state up, one bridge address per network it serves. A host that returns while
    /// still up (within its TTL) keeps every lease; agents holding the previous epoch are fenced off.
    public mutating func join(
        host name: String,
        underlay: IPv4Address,
        networks requested: [String],
        lastEpoch known: Int64? = nil,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws -> JoinResult {
        if let known, !(0..<Ledger.maximumEpoch).contains(known) {
            throw NetleaseError.badRequest("last-epoch must be 0...\(Ledger.maximumEpoch - 1), not \(known)")
        }
        try Names.checkName(name, field: "host", kind: "host")
        let epoch = max(lastEpoch, hosts[name]?.epoch ?? 0, known ?? 0) + 1
        guard epoch <= Ledger.maximumEpoch else {
            throw NetleaseError.conflict(
                "host '\(name)' has no epoch left above \(epoch - 1); remove the host and clear its agent's state "
                    + "directory"
            )
        }
        // Every peer points a tunnel at this address: one no packet can be sent to would send the network's
        // traffic nowhere, or (broadcast, multicast) to every machine of the underlay.
        guard underlay.isUnicastDestination else {
            throw NetleaseError.badRequest(
                "field 'underlay': \(underlay) is not a unicast address (not in 0.0.0.0/8, 224.0.0.0/4 or 240.0.0.0/4)"
            )
        }
        // A network named again counts once, at its first place (as the parser does).
        var named = Set<String>()
        var distinct: [String] = []
        for network in requested {
            try Names.checkName(network, field: "networks", kind: "network")
            if named.insert(network).inserted { distinct.append(network) }
        }
        let networks = requested.isEmpty ? books.keys.sorted() : distinct
        for network in networks where books[network] == nil { throw NetleaseError.unknownNetwork(network) }
        // A lost host keeps its underlay until it is removed: it comes back from there, and its peers' tunnels to
        // the address are its. Taking it over used to lock the lost host out (its own JOIN got `conflict`).
        if let other = hosts.values.first(where: { $0.name != name && $0.underlay == underlay }) {
            throw NetleaseError.conflict(
                "underlay address \(underlay) is already used by host '\(other.name)'"
                    + (other.state == .up ? "" : " (lost; remove it first if it is gone for good)")
            )
        }
        // Check every network can give a bridge address before changing anything, so a refused join changes nothing.
        for network in networks {
            endCooldowns(network: network, now: now, changes: &changes)
            let book = books[network]!
            // A cooling bridge address of its own is given back below, so it needs no free one.
            let owner = Lease.bridgeOwner(host: name)
            if book.activeLease(owner: owner) == nil && book.coolingLease(owner: owner) == nil && book.counts.free == 0
            {
                throw Ledger.exhausted(book)
            }
        }
        var host =
            hosts[name]
            ?? HostRecord(
                name: name,
                underlay: underlay,
                epoch: 0,
                state: .up,
                networks: [],
                joined: now,
                lastHeartbeat: now
            )
        let dropped = host.networks.filter { !networks.contains($0) }
        // Above every epoch issued here and every one the agent says it had: after a restore from an older backup
        // the counter is behind, but a host never gets an epoch it had before. The counter follows only within
        // `maximumEpochLead`: a host's own claim cannot use up every other host's epochs.
        lastEpoch = epoch - lastEpoch <= Ledger.maximumEpochLead ? epoch : lastEpoch + 1
        host.epoch = epoch
        changes.append(.recordEpoch(lastEpoch))
        host.underlay = underlay
        host.state = .up
        host.networks = networks
        host.joined = now
        host.lastHeartbeat = now
        hosts[name] = host
        changes.append(.upsertHost(host))
        for network in dropped {
            if let bridge = books[network]?.activeLease(owner: Lease.bridgeOwner(host: name)) {
                toCooldown(bridge, now: now, changes: &changes)
            }
        }
        var bridges: [Lease] = []
        for network in networks {
            // A host that returns after being declared lost gets its previous bridge address back when nobody took
            // it meanwhile: its containers still use it as their gateway.
            let owner = Lease.bridgeOwner(host: name)
            if books[network]!.activeLease(owner: owner) == nil,
                let previous = books[network]!.coolingLease(owner: owner)
            {
                var revived = previous
                revived.state = .active
                revived.host = name
                revived.isStatic = false
                revived.renewed = now
                revived.until = 0
                let record = revived
                modifyBook(network) { $0.put(record) }
                changes.append(.updateLease(revived))
            }
            let lease = try acquireChecked(
                network: network,
                owner: Lease.bridgeOwner(host: name),
                claim: HostClaim(host: name, epoch: host.epoch),
                wanted: nil,
                ifname: books[network]!.spec.bridge,
                now: now,
                changes: &changes
            )
            bridges.append(lease)
        }
        return JoinResult(host: host, bridges: bridges)
    }

    /// Renews every lease of a host.
    public mutating func heartbeat(
        host name: String,
        epoch: Int64,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws
        -> HostRecord
    {
        var host = try checkClaim(HostClaim(host: name, epoch: epoch))!
        host.lastHeartbeat = now
        hosts[name] = host
        // Not persisted: after a restart every host that was up gets a full TTL of grace anyway, so a stored
        // heartbeat time would never be used. Heartbeats cost no disk write.
        return host
    }

    /// Removes a host for good: its leases go to cooldown and it must join again to come back.
    public mutating func removeHost(_ name: String, now: Millis, changes: inout [LedgerChange]) throws -> Int {
        try Names.checkName(name, field: "host", kind: "host")
        guard hosts[name] != nil else { throw NetleaseError.notFound("no host named '\(name)'") }
        let released = releaseAll(ofHosts: [name], includeStatic: false, now: now, changes: &changes)
        hosts[name] = nil
        changes.append(.deleteHost(name))
        return released
    }

    /// The lease TTL that applies to a host: the longest of its networks', so no lease is reclaimed early.
    public func ttl(of host: HostRecord) -> Int {
        host.networks.compactMap { books[$0]?.spec.leaseTTL }.max() ?? NetworkSpec.defaultLeaseTTL
    }

    /// Marks hosts that missed heartbeats for their whole TTL as lost and moves their leases to cooldown; ends
    /// cooldowns that are over. Returns the names of hosts newly lost.
    public mutating func reclaim(now: Millis, changes: inout [LedgerChange]) -> [String] {
        var lost: [String] = []
        for name in hosts.keys.sorted() {
            guard var host = hosts[name], host.state == .up else { continue }
            guard now - host.lastHeartbeat > Millis(ttl(of: host)) * 1000 else { continue }
            host.state = .lost
            hosts[name] = host
            changes.append(.upsertHost(host))
            lost.append(name)
        }
        // One pass over the records for all hosts lost at once (a partition can take hundreds).
        if !lost.isEmpty { _ = releaseAll(ofHosts: Set(lost), includeStatic: false, now: now, changes: &changes) }
        for name in books.keys.sorted() { endCooldowns(network: name, now: now, changes: &changes) }
        return lost
    }

    /// Moves every active lease of `names` to cooldown (static ones only with `includeStatic`). One pass over each
    /// network's records, comparing numbers (`AddressBook.activeAddresses`).
    private mutating func releaseAll(
        ofHosts names: Set<String>,
        includeStatic: Bool,
        now: Millis,
        changes: inout [LedgerChange]
    ) -> Int {
        var released = 0
        for network in books.keys.sorted() {
            for address in books[network]!.activeAddresses(heldBy: names, includeStatic: includeStatic) {
                toCooldown(books[network]!.record(address)!, now: now, changes: &changes)
                released += 1
            }
        }
        return released
    }

    /// Validates an agent's claim to speak for a host. Returns the host when it exists. With `network`, a claim with
    /// an epoch must name a network the host joined: an agent acts only where it serves (without the check one host
    /// credential could quarantine or take the addresses of every network, its own or not).
    @discardableResult
    func checkClaim(_ claim: HostClaim, in network: String? = nil) throws -> HostRecord? {
        try Names.checkName(claim.host, field: "host", kind: "host")
        guard let host = hosts[claim.host] else {
            if claim.epoch != nil { throw NetleaseError.notFound("no host named '\(claim.host)'; join first") }
            return nil
        }
        if let epoch = claim.epoch {
            guard host.state == .up else {
                throw NetleaseError(.staleEpoch, "host '\(claim.host)' was declared lost; join again")
            }
            guard epoch == host.epoch else {
                throw NetleaseError(
                    .staleEpoch,
                    "epoch \(epoch) of host '\(claim.host)' is stale (current \(host.epoch)); join again"
                )
            }
            if let network, !host.networks.contains(network) {
                throw NetleaseError(
                    .forbidden,
                    "host '\(claim.host)' did not join network '\(network)'; it acts only in the networks it joined"
                )
            }
        }
        return host
    }
}
