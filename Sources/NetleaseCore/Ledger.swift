/// A change to durable state that the store must write for an operation to count as done.
public enum LedgerChange: Sendable, Equatable {
    case insertNetwork(NetworkSpec)
    case deleteNetwork(String)
    case upsertHost(HostRecord)
    case deleteHost(String)
    /// A new record for an address that has none. The store's unique key refuses a second one.
    case insertLease(Lease)
    case updateLease(Lease)
    case deleteLease(network: String, address: IPv4Address)
    /// The highest epoch ever issued, so epochs never repeat, even for a host that was removed and joins again.
    case recordEpoch(Int64)
}

/// Who is asking, for operations an agent performs on behalf of its host.
public struct HostClaim: Sendable, Equatable {
    public var host: String
    /// The epoch the agent got at join; nil when an admin names the host without one.
    public var epoch: Int64?

    public init(host: String, epoch: Int64? = nil) {
        self.host = host
        self.epoch = epoch
    }
}

/// The whole lease state of a cluster and every rule that keeps it consistent. Pure: each operation takes the time
/// from its caller, mutates the value and appends the changes the store must persist. Nothing here does I/O.
public struct Ledger: Sendable {
    /// The largest epoch (2^53: exact in JSON numbers; far from overflowing the counter). A JOIN may state a
    /// `last-epoch` below it.
    public static let maximumEpoch: Int64 = 1 << 53

    /// How far above the cluster-wide counter a JOIN's `last-epoch` may raise it (2^16). After a restore from an
    /// older backup an honest agent's last epoch leads the counter by the JOINs made since the backup; a higher one
    /// raises only that host's epoch. Without the cap one JOIN stating 2^53 - 1 moved the counter to the end of the
    /// range, and every host's next JOIN was refused for good: one host credential could lock out the cluster.
    public static let maximumEpochLead: Int64 = 1 << 16

    public private(set) var books: [String: AddressBook] = [:]
    public internal(set) var hosts: [String: HostRecord] = [:]
    /// Highest epoch issued to any host so far. New epochs are above it: a removed host that joins again can never
    /// be given an epoch a stale agent of its earlier life still holds.
    public internal(set) var lastEpoch: Int64 = 0

    public init() {}

    /// Rebuilds the ledger from stored rows. Hosts that were up get a full TTL of grace from `now`: time the
    /// coordinator was down is never held against them.
    ///
    /// `restartingCooldowns`: every cooldown also runs its full length from `now` at least. For a store shared by
    /// several coordinators: a cooldown's end was set by the clock of the leader that wrote it, and a new leader
    /// whose clock runs ahead would otherwise end it early, handing out an address a lost host may still use (the
    /// way host TTLs, and Consul's session TTLs, start afresh at a failover). A coordinator that reloads its own
    /// SQLite file keeps the ends as written: time it was down counts.
    public init(
        networks: [NetworkSpec],
        hosts: [HostRecord],
        leases: [Lease],
        lastEpoch: Int64 = 0,
        now: Millis,
        restartingCooldowns: Bool = false
    ) {
        // Host epochs count within the lead a JOIN may give the counter; one above it raised only its own host's.
        self.lastEpoch = max(
            lastEpoch,
            hosts.map(\.epoch).filter { $0 - lastEpoch <= Ledger.maximumEpochLead }.max() ?? 0
        )
        var byNetwork: [String: [Lease]] = [:]
        for lease in leases { byNetwork[lease.network, default: []].append(lease) }
        for spec in networks {
            var records = byNetwork[spec.name] ?? []
            if restartingCooldowns {
                let fullEnd = now + Millis(spec.cooldown) * 1000
                for index in records.indices where records[index].state == .cooldown {
                    records[index].until = max(records[index].until, fullEnd)
                }
            }
            books[spec.name] = AddressBook(spec: spec, records: records)
        }
        for var host in hosts {
            if host.state == .up { host.lastHeartbeat = max(host.lastHeartbeat, now) }
            self.hosts[host.name] = host
        }
    }

    // MARK: networks

    public mutating func createNetwork(
        _ request: NetworkSpec,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws
        -> NetworkSpec
    {
        var spec = request
        try Names.checkName(spec.name, field: "name", kind: "network")
        guard IPv4Subnet.prefixRange.contains(spec.subnet.prefix) else {
            throw NetleaseError.badRequest(
                "subnet \(spec.subnet) must have a prefix between /\(IPv4Subnet.prefixRange.lowerBound) and /\(IPv4Subnet.prefixRange.upperBound)"
            )
        }
        if let (block, use) = spec.subnet.nonUnicastBlock {
            throw NetleaseError.badRequest(
                "subnet \(spec.subnet) is not unicast address space: it overlaps \(block) (\(use))"
            )
        }
        if let existing = books[spec.name] {
            throw NetleaseError.conflict("network '\(spec.name)' already exists with subnet \(existing.spec.subnet)")
        }
        if let other = books.values.first(where: { $0.spec.subnet.overlaps(spec.subnet) }) {
            throw NetleaseError.conflict(
                "subnet \(spec.subnet) overlaps network '\(other.spec.name)' (\(other.spec.subnet))"
            )
        }
        if spec.vni == 0 {
            guard let vni = Self.automaticVNI(used: Set(books.values.map(\.spec.vni))) else {
                throw NetleaseError.conflict(
                    "every VNI \(Self.vniRange.lowerBound)-\(Self.vniRange.upperBound) is used by a network"
                )
            }
            spec.vni = vni
        } else if !Self.vniRange.contains(spec.vni) {
            throw NetleaseError.badRequest(
                "vni \(spec.vni) is out of range \(Self.vniRange.lowerBound)-\(Self.vniRange.upperBound)"
            )
        } else if let other = books.values.first(where: { $0.spec.vni == spec.vni }) {
            throw NetleaseError.conflict("vni \(spec.vni) is used by network '\(other.spec.name)'")
        }
        if spec.bridge.isEmpty {
            spec.bridge = String("nl-\(spec.name)".prefix(15))
        }
        try Names.checkInterface(spec.bridge, field: "bridge")
        if let other = books.values.first(where: { $0.spec.bridge == spec.bridge }) {
            throw NetleaseError.conflict("bridge '\(spec.bridge)' is used by network '\(other.spec.name)'")
        }
        guard spec.mtu == 0 || (576...9000).contains(spec.mtu) else {
            throw NetleaseError.badRequest("mtu \(spec.mtu) is out of range 576-9000 (0 = automatic)")
        }
        guard (3...86_400 * 365).contains(spec.leaseTTL) else {
            throw NetleaseError.badRequest("lease TTL \(spec.leaseTTL)s is out of range 3-31536000")
        }
        guard (0...86_400 * 365).contains(spec.cooldown) else {
            throw NetleaseError.badRequest("cooldown \(spec.cooldown)s is out of range 0-31536000")
        }
        for range in spec.excluded where !(spec.subnet.contains(range.first) && spec.subnet.contains(range.last)) {
            throw NetleaseError.badRequest("excluded range \(range) is not inside \(spec.subnet)")
        }
        spec.created = now
        spec.excluded = IPv4Range.merged(spec.excluded)
        guard spec.usableCount > 0 else {
            throw NetleaseError.badRequest("network \(spec.subnet) has no usable address left after exclusions")
        }
        books[spec.name] = AddressBook(spec: spec)
        changes.append(.insertNetwork(spec))
        return spec
    }

    /// VXLAN network identifiers are 24 bits; VNI 0 in a request means "choose one".
    public static let vniRange: ClosedRange<UInt32> = 1...16_777_215

    /// The VNI of a network created without one: the first network gets 42, later ones one above the highest in
    /// use while that fits in 24 bits, then the lowest free one; nil when none is free. Counting up rather than
    /// filling gaps puts off reusing a deleted network's VNI (only the highest can come back at once): an agent
    /// that has not yet removed the old network's VXLAN device would bridge the new network into the old one.
    static func automaticVNI(used: Set<UInt32>, in range: ClosedRange<UInt32> = vniRange) -> UInt32? {
        guard let highest = used.max() else { return range.contains(42) ? 42 : range.lowerBound }
        if highest < range.upperBound { return highest + 1 }
        return range.first { !used.contains($0) }
    }

    /// Deletes a network, refusing while any container holds an address in it, and while any address is in
    /// cooldown: the cooldown records go with the network, and a network created again over the same addresses
    /// could hand one out while its former holder may still use it. Bridge addresses, reservations and conflict
    /// records go with the network.
    public mutating func deleteNetwork(_ name: String, now: Millis, changes: inout [LedgerChange]) throws {
        try checkNetwork(name)
        let book = books[name]!
        let held = book.leases.filter { $0.state == .active && !$0.isBridge }.count
        guard held == 0 else {
            throw NetleaseError.conflict("network '\(name)' still has \(held) active lease(s); release them first")
        }
        let coolingEnds = book.leases.filter { [.cooldown, .reserved].contains($0.state) && $0.until > now }
            .map(\.until)
        if let last = coolingEnds.max() {
            throw NetleaseError.conflict(
                "network '\(name)' has \(coolingEnds.count) address(es) in cooldown for up to "
                    + "\((last - now + 999) / 1000)s more; delete it after that"
            )
        }
        try checkNoHostServes(name)
        books[name] = nil
        changes.append(.deleteNetwork(name))
    }

    /// Mutates a book in place. The dictionary's storage is modified through, never copied: copying a book (its
    /// record and owner tables) per change would make every allocation cost grow with the pool's size. `body` may
    /// use only its argument, not `self`. Internal for the ledger's extensions in other files.
    mutating func modifyBook<T>(_ name: String, _ body: (inout AddressBook) throws -> T) rethrows -> T {
        try body(&books[name]!)
    }

    public func network(_ name: String) throws -> AddressBook {
        try checkNetwork(name)
        return books[name]!
    }

    /// Refuses a network name outside the grammar (`bad-request`) before looking it up (`unknown-network`): only a
    /// name with one spelling may be looked up in a dictionary that compares canonical equivalence (`Names`).
    func checkNetwork(_ name: String, field: String = "network") throws {
        try Names.checkName(name, field: field, kind: "network")
        guard books[name] != nil else { throw NetleaseError.unknownNetwork(name) }
    }

    // MARK: leases

    /// Leases an address to `owner`. Idempotent: the same (network, owner) gets its existing lease back.
    public mutating func acquire(
        network: String,
        owner: String,
        claim: HostClaim?,
        wanted: IPv4Address?,
        ifname: String = "",
        now: Millis,
        changes: inout [LedgerChange]
    ) throws -> Lease {
        try checkNetwork(network)
        try Names.checkOwner(owner)
        guard !Lease.isBridgeOwner(owner) else {
            throw NetleaseError.badRequest(
                "field 'owner': owner ids starting with 'bridge:' are reserved for hosts' bridge addresses"
            )
        }
        if !ifname.isEmpty { try Names.checkInterface(ifname, field: "ifname") }
        return try acquireChecked(
            network: network,
            owner: owner,
            claim: claim,
            wanted: wanted,
            ifname: ifname,
            now: now,
            changes: &changes
        )
    }

    mutating func acquireChecked(
        network: String,
        owner: String,
        claim: HostClaim?,
        wanted: IPv4Address?,
        ifname: String,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws -> Lease {
        guard books[network] != nil else { throw NetleaseError.unknownNetwork(network) }
        guard !owner.isEmpty, owner.utf8.count <= 256 else {
            throw NetleaseError.badRequest("owner must be 1-256 bytes")
        }
        var hostBound = false
        if let claim {
            if try checkClaim(claim, in: network) != nil, hosts[claim.host]?.state == .up { hostBound = true }
        }
        if let existing = books[network]!.activeLease(owner: owner) {
            if let wanted, wanted != existing.address {
                throw NetleaseError.conflict("owner '\(owner)' already holds \(existing.address) in '\(network)'")
            }
            if let claim, existing.host != claim.host {
                throw NetleaseError.conflict(
                    "owner '\(owner)' already holds \(existing.address) in '\(network)' on host '\(existing.host)'"
                )
            }
            return existing
        }
        endCooldowns(network: network, now: now, changes: &changes)
        if let wanted { try checkWanted(wanted, in: books[network]!, now: now) }
        let prefix = books[network]!.spec.subnet.prefix
        let lease = try modifyBook(network) { book -> Lease in
            guard let address = wanted ?? book.nextFree() else { throw Ledger.exhausted(book) }
            let lease = Lease(
                network: network,
                address: address,
                prefix: prefix,
                state: .active,
                host: claim?.host ?? "",
                owner: owner,
                ifname: ifname,
                isStatic: !hostBound,
                created: now,
                renewed: now
            )
            book.put(lease)
            return lease
        }
        changes.append(.insertLease(lease))
        return lease
    }

    private func checkWanted(_ wanted: IPv4Address, in book: AddressBook, now: Millis) throws {
        let subnet = book.spec.subnet
        guard subnet.contains(wanted) else {
            throw NetleaseError.badRequest("address \(wanted) is not in \(book.spec.name) (\(subnet))")
        }
        guard subnet.isHostAddress(wanted) else {
            throw NetleaseError.badRequest("address \(wanted) is the network or broadcast address of \(subnet)")
        }
        guard !book.spec.isExcluded(wanted) else {
            throw NetleaseError.conflict("address \(wanted) is excluded from \(book.spec.name)")
        }
        if let record = book.record(wanted) {
            switch record.state {
            case .active:
                // Without the holder's owner: host credentials ask this too, and another host's owners are not
                // theirs to see (LEASE-LIST hides them).
                throw NetleaseError.conflict(
                    "address \(wanted) is held" + (record.host.isEmpty ? "" : " on host '\(record.host)'")
                )
            case .reserved:
                throw NetleaseError.conflict("address \(wanted) is reserved")
            case .conflict:
                throw NetleaseError.conflict("address \(wanted) is quarantined: it answered ARP from \(record.mac)")
            case .cooldown:
                let remaining = max(0, record.until - now + 999) / 1000
                throw NetleaseError.conflict("address \(wanted) is in cooldown after release for \(remaining)s more")
            }
        }
    }

    static func exhausted(_ book: AddressBook) -> NetleaseError {
        let c = book.counts
        return NetleaseError(
            .poolExhausted,
            "no free address in '\(book.spec.name)' (\(book.spec.subnet)): leased=\(c.active) reserved=\(c.reserved) conflict=\(c.conflict) cooldown=\(c.cooldown) free=\(c.free)"
        )
    }

    /// Releases by owner or by address. Idempotent: releasing what is not held returns nil and changes nothing.
    /// Hosts' bridge addresses are not released this way: they go with `removeHost`.
    public mutating func release(
        network: String,
        owner: String?,
        address: IPv4Address?,
        claim: HostClaim?,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws -> Lease? {
        try checkNetwork(network)
        if let owner { try Names.checkOwner(owner) }
        if let claim { try checkClaim(claim) }
        let lease: Lease?
        if let owner {
            lease = books[network]!.activeLease(owner: owner)
            if let address, let lease, lease.address != address {
                throw NetleaseError.conflict("owner '\(owner)' holds \(lease.address), not \(address)")
            }
        } else if let address {
            let record = books[network]!.record(address)
            if let record, record.state == .reserved {
                throw NetleaseError.conflict("address \(address) is reserved; use unreserve")
            }
            lease = record.flatMap { [.active, .conflict].contains($0.state) ? $0 : nil }
        } else {
            throw NetleaseError.badRequest("release needs owner or address")
        }
        guard let lease else { return nil }
        if lease.isBridge && lease.state == .active {
            throw NetleaseError.conflict(
                "\(lease.address) is the bridge address of host '\(lease.host)'; remove the host to free it"
            )
        }
        if let claim, lease.host != claim.host {
            throw NetleaseError.conflict("lease \(lease.address) belongs to host '\(lease.host)', not '\(claim.host)'")
        }
        if lease.state == .conflict, claim?.epoch != nil {
            // An agent's report starts a quarantine; an admin ends it, once the foreign user is found.
            throw NetleaseError.conflict(
                "address \(lease.address) is quarantined; an admin lifts it with RELEASE network=\(network) "
                    + "address=\(lease.address)"
            )
        }
        return toCooldown(lease, now: now, changes: &changes)
    }

    /// Sets an address aside so it is never handed out. Idempotent; refused while someone holds the address.
    public mutating func reserve(
        network: String,
        address: IPv4Address,
        note: String,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws -> Lease {
        try checkNetwork(network)
        try Names.checkText(note, field: "note", maxBytes: Names.maxNoteBytes, allowEmpty: true)
        let spec = books[network]!.spec
        guard spec.subnet.isHostAddress(address) else {
            throw NetleaseError.badRequest("address \(address) is not a host address of \(spec.subnet)")
        }
        guard !spec.isExcluded(address) else {
            throw NetleaseError.badRequest(
                "address \(address) is excluded from \(network) already; it is never handed out"
            )
        }
        var lease = Lease(
            network: network,
            address: address,
            prefix: spec.subnet.prefix,
            state: .reserved,
            note: note,
            created: now,
            renewed: now
        )
        if let record = books[network]!.record(address) {
            switch record.state {
            case .active, .conflict:
                throw NetleaseError.conflict("address \(address) is \(record.state.rawValue) (owner '\(record.owner)')")
            case .reserved, .cooldown:
                lease.created = record.state == .reserved ? record.created : now
                // A cooldown the reservation interrupts is kept in `until`, so that unreserving cannot cut it short.
                lease.until = record.until > now ? record.until : 0
                changes.append(.updateLease(lease))
            }
        } else {
            changes.append(.insertLease(lease))
        }
        modifyBook(network) { $0.put(lease) }
        return lease
    }

    /// Deletes a reservation. The address is free at once, unless the reservation interrupted a cooldown that has
    /// not ended: then it is in cooldown again until that end.
    public mutating func unreserve(
        network: String,
        address: IPv4Address,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws {
        try checkNetwork(network)
        guard let record = books[network]!.record(address), record.state == .reserved else {
            throw NetleaseError.notFound("address \(address) is not reserved in '\(network)'")
        }
        guard record.until > now else {
            modifyBook(network) { $0.remove(address) }
            changes.append(.deleteLease(network: network, address: address))
            return
        }
        var cooling = record
        cooling.state = .cooldown
        cooling.note = ""
        // The release the cooldown started with: the network's cooldown never changes.
        cooling.renewed = record.until - Millis(books[network]!.spec.cooldown) * 1000
        let restored = cooling
        modifyBook(network) { $0.put(restored) }
        changes.append(.updateLease(restored))
    }

    /// Quarantines an address that answered an ARP probe. When the reporting host's own fresh lease holds it, that
    /// lease becomes the conflict record (its owner must acquire again).
    public mutating func reportConflict(
        network: String,
        address: IPv4Address,
        mac: String,
        claim: HostClaim,
        now: Millis,
        changes: inout [LedgerChange]
    ) throws -> Lease {
        try checkNetwork(network)
        try Names.checkText(mac, field: "mac", maxBytes: Names.maxMACBytes, allowEmpty: false)
        let spec = books[network]!.spec
        try checkClaim(claim, in: network)
        guard spec.subnet.isHostAddress(address), !spec.isExcluded(address) else {
            throw NetleaseError.badRequest("address \(address) is not a leasable address of \(network)")
        }
        var lease = Lease(
            network: network,
            address: address,
            prefix: spec.subnet.prefix,
            state: .conflict,
            host: claim.host,
            mac: mac,
            created: now,
            renewed: now
        )
        if let record = books[network]!.record(address) {
            switch record.state {
            case .active where record.host != claim.host || record.isBridge:
                throw NetleaseError.conflict(
                    "address \(address) is held on host '\(record.host)'; not quarantined"
                )
            case .reserved:
                return record
            case .cooldown where record.host != claim.host:
                // The cooldown already keeps the address from being handed out, for a holder on another host (or
                // none) that may still use it; a quarantine would take that host's address (its bridge address
                // too) for good, and make the reporter its holder.
                throw NetleaseError.conflict(
                    "address \(address) is cooling down after a lease on host '\(record.host)'; not quarantined"
                )
            case .active, .conflict, .cooldown:
                lease.owner = record.state == .active ? record.owner : ""
                changes.append(.updateLease(lease))
            }
        } else {
            changes.append(.insertLease(lease))
        }
        modifyBook(network) { $0.put(lease) }
        return lease
    }

    // MARK: internals

    /// Moves a record to cooldown (or frees it at once when the network has no cooldown). Returns the record as it
    /// now stands: state `cooldown`, `until` the end of the cooldown.
    @discardableResult
    mutating func toCooldown(_ lease: Lease, now: Millis, changes: inout [LedgerChange]) -> Lease {
        var cooling = lease
        cooling.state = .cooldown
        cooling.renewed = now
        guard let cooldownSeconds = books[lease.network]?.spec.cooldown else { return cooling }
        let cooldown = Millis(cooldownSeconds) * 1000
        cooling.until = now + cooldown
        if cooldown == 0 {
            modifyBook(lease.network) { $0.remove(lease.address) }
            changes.append(.deleteLease(network: lease.network, address: lease.address))
        } else {
            let record = cooling
            modifyBook(lease.network) { $0.put(record) }
            changes.append(.updateLease(cooling))
        }
        return cooling
    }

    mutating func endCooldowns(network: String, now: Millis, changes: inout [LedgerChange]) {
        guard books[network] != nil else { return }
        let expired = modifyBook(network) { book -> [IPv4Address] in
            let expired = book.expiredCooldowns(now: now)
            for address in expired { book.remove(address) }
            return expired
        }
        for address in expired { changes.append(.deleteLease(network: network, address: address)) }
    }
}
