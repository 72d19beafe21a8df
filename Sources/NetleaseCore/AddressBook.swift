/// Every record of one network (leases, reservations, conflicts, cooldowns) plus the free-address index that makes
/// allocation cost independent of how full the pool is.
///
/// Design notes:
/// - `records` holds every address that is not free. An address is free exactly when it has no record, is a host
///   address of the subnet and is not excluded.
/// - Allocation never scans for the first gap. It takes, in order: addresses never handed out since start (a cursor
///   that only moves forward), then addresses whose cooldown ended (FIFO, so the address freed longest ago is reused
///   first). Queues may hold addresses that were taken again meanwhile; they are skipped when popped (lazy delete).
///   Each address enters a queue once per free event, so the work per allocation is amortised O(1).
/// - The cursor skips addresses that already have records. After a restart the first allocation may step over many
///   taken addresses once; later ones do not.
public struct AddressBook: Sendable {
    public private(set) var spec: NetworkSpec
    public private(set) var records: [UInt32: Lease] = [:]
    /// owner → address of that owner's active lease.
    public private(set) var owners: [String: UInt32] = [:]
    /// owner → address of a cooldown record still naming that owner (how a returning host finds its old bridge
    /// address without scanning every record).
    private var coolingOwners: [String: UInt32] = [:]
    public private(set) var counts: PoolCounts

    private var cursor: UInt64
    private var recycled = RingQueue<UInt32>()
    private var cooling = RingQueue<CoolingEntry>()

    struct CoolingEntry: Sendable {
        var address: UInt32
        var until: Millis
    }

    public init(spec: NetworkSpec, records: [Lease] = []) {
        self.spec = spec
        counts = PoolCounts(usable: spec.usableCount)
        cursor = UInt64(spec.subnet.firstHost.value)
        for lease in records.sorted(by: { ($0.until, $0.address) < ($1.until, $1.address) }) {
            put(lease)
        }
    }

    public func record(_ address: IPv4Address) -> Lease? { records[address.value] }

    public func activeLease(owner: String) -> Lease? { owners[owner].flatMap { records[$0] } }

    /// A cooldown record that still names `owner`, if any.
    public func coolingLease(owner: String) -> Lease? {
        coolingOwners[owner].flatMap { records[$0] }.flatMap { $0.state == .cooldown && $0.owner == owner ? $0 : nil }
    }

    /// Whether `address` could be leased right now: a host address, not excluded, without a record.
    public func isFree(_ address: IPv4Address) -> Bool {
        spec.subnet.isHostAddress(address) && !spec.isExcluded(address) && records[address.value] == nil
    }

    /// Sets or replaces the record of an address, keeping counts, the owner index and the cooldown queue right.
    public mutating func put(_ lease: Lease) {
        let key = lease.address.value
        if let old = records[key] { forget(old) }
        records[key] = lease
        switch lease.state {
        case .active:
            counts.active += 1
            if !lease.owner.isEmpty { owners[lease.owner] = key }
        case .reserved: counts.reserved += 1
        case .conflict: counts.conflict += 1
        case .cooldown:
            counts.cooldown += 1
            cooling.append(CoolingEntry(address: key, until: lease.until))
            if !lease.owner.isEmpty { coolingOwners[lease.owner] = key }
        }
    }

    /// Removes the record of an address; the address becomes free at once.
    public mutating func remove(_ address: IPv4Address) {
        guard let old = records.removeValue(forKey: address.value) else { return }
        forget(old)
        recycled.append(address.value)
    }

    private mutating func forget(_ lease: Lease) {
        switch lease.state {
        case .active:
            counts.active -= 1
            if owners[lease.owner] == lease.address.value { owners[lease.owner] = nil }
        case .reserved: counts.reserved -= 1
        case .conflict: counts.conflict -= 1
        case .cooldown:
            counts.cooldown -= 1
            if coolingOwners[lease.owner] == lease.address.value { coolingOwners[lease.owner] = nil }
        }
    }

    /// Cooldown records whose time has come, oldest first. The caller deletes them (and persists the deletion).
    public mutating func expiredCooldowns(now: Millis) -> [IPv4Address] {
        var expired: [IPv4Address] = []
        while let entry = cooling.first, entry.until <= now {
            _ = cooling.popFirst()
            // Skip stale entries: the address was reserved, reused, or its cooldown was renewed since.
            if let lease = records[entry.address], lease.state == .cooldown, lease.until == entry.until {
                expired.append(IPv4Address(entry.address))
            }
        }
        return expired
    }

    /// The next free address, or nil when none is free. Does not take it: the caller `put`s a record.
    public mutating func nextFree() -> IPv4Address? {
        let last = UInt64(spec.subnet.lastHost.value)
        while cursor <= last {
            let candidate = IPv4Address(UInt32(cursor))
            cursor += 1
            if isFree(candidate) { return candidate }
        }
        while let value = recycled.popFirst() {
            let candidate = IPv4Address(value)
            if isFree(candidate) { return candidate }
        }
        return nil
    }
}
