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
/// - Cooldown ends enter a FIFO queue, which is in order of their end because every cooldown of a network lasts
///   as long. A cooldown restored with an earlier end (an address unreserved during its cooldown, `Ledger.unreserve`)
///   goes to a small sorted side list instead of waiting behind later ends.
/// - The cursor jumps over an excluded range in one step (a binary search of the merged ranges): stepping through
///   one address at a time, a /8 excluded but for a few addresses cost 16 million steps under the store's lock.
/// - The cursor skips addresses that already have records. After a restart the first allocation may step over many
///   taken addresses once; later ones do not.
///
/// Records are stored compactly (`StoredRecord`): the network, prefix and address are the book's and the key's,
/// host names and interface names are numbers into the book's `NameTable` (a few hosts hold thousands of leases,
/// nearly all named `eth0`), and the rarely set note and MAC sit behind one reference — 56 bytes instead of a
/// `Lease`'s 152, which matters at tens of thousands of leases. `record(_:)` and `leases` hand out full `Lease`
/// values.
public struct AddressBook: Sendable {
    public private(set) var spec: NetworkSpec
    /// The spec's excluded ranges, merged and sorted, for binary search.
    private let exclusions: [IPv4Range]
    // Tables are sharded (`ShardedTable`) so that growing one never stalls the store for long.
    private var stored = ShardedTable<UInt32, StoredRecord> { Int($0) }
    private var names = NameTable()
    private var ifnames = NameTable()
    /// owner → address of that owner's active lease. Keyed by bytes, as the store's unique owner index is.
    private var ownerIndex = ShardedTable<ExactKey, UInt32> { $0.hashValue }
    /// owner → address of a cooldown record still naming that owner (how a returning host finds its old bridge
    /// address without scanning every record).
    private var coolingOwners = ShardedTable<ExactKey, UInt32> { $0.hashValue }

    /// owner → address of that owner's active lease, as a dictionary (for tests and tools, not hot paths). Two
    /// owners that differ in bytes but not as Swift strings (possible only in a file from before `Names`' rules)
    /// would share a key here; `activeLease(owner:)` keeps them apart.
    public var owners: [String: UInt32] {
        Dictionary(ownerIndex.map { ($0.key.string, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
    public private(set) var counts: PoolCounts

    private var cursor: UInt64
    private var recycled = RingQueue<UInt32>()
    private var cooling = RingQueue<CoolingEntry>()
    /// The latest end in `cooling`: an entry that ends earlier goes to `coolingOutOfOrder`.
    private var latestCoolingEnd = Millis.min
    /// Cooldowns that end before the latest in `cooling`, sorted by end, latest first (popped from the back). Rare.
    private var coolingOutOfOrder: [CoolingEntry] = []

    struct CoolingEntry: Sendable {
        var address: UInt32
        var until: Millis
    }

    public init(spec: NetworkSpec, records: [Lease] = []) {
        self.spec = spec
        exclusions = IPv4Range.merged(spec.excluded)
        counts = PoolCounts(usable: spec.usableCount)
        cursor = UInt64(spec.subnet.firstHost.value)
        for lease in records.sorted(by: { ($0.until, $0.address) < ($1.until, $1.address) }) {
            put(lease)
        }
    }

    public func record(_ address: IPv4Address) -> Lease? { lease(address.value) }

    public func activeLease(owner: String) -> Lease? { ownerIndex[ExactKey(owner)].flatMap { lease($0) } }

    /// A cooldown record that still names `owner`, if any.
    public func coolingLease(owner: String) -> Lease? {
        coolingOwners[ExactKey(owner)].flatMap { lease($0) }.flatMap {
            $0.state == .cooldown && $0.owner.hasSameBytes(as: owner) ? $0 : nil
        }
    }

    /// Every record, in no particular order.
    public var leases: some Sequence<Lease> {
        let network = spec.name
        let prefix = spec.subnet.prefix
        let (names, ifnames) = (self.names, self.ifnames)
        return stored.lazy.map {
            $0.value.lease(network: network, address: $0.key, prefix: prefix, names: names, ifnames: ifnames)
        }
    }

    /// Every record by address. Builds a dictionary of all of them: for tests and tools, not hot paths.
    public var records: [UInt32: Lease] {
        Dictionary(uniqueKeysWithValues: leases.map { ($0.address.value, $0) })
    }

    /// Addresses of the active records held by any of `hosts` (static ones only with `includeStatic`), in address
    /// order. One pass over the compact records comparing numbers: no `Lease` is built for the others.
    public func activeAddresses(heldBy hosts: Set<String>, includeStatic: Bool) -> [IPv4Address] {
        let ids = Set(hosts.compactMap { names.existingID($0) })
        guard !ids.isEmpty else { return [] }
        var found: [UInt32] = []
        for (key, record) in stored
        where record.state == .active && ids.contains(record.host) && (includeStatic || !record.isStatic) {
            found.append(key)
        }
        return found.sorted().map(IPv4Address.init)
    }

    /// How many addresses have a record.
    public var recordCount: Int { stored.count }

    private func lease(_ key: UInt32) -> Lease? {
        stored[key].map {
            $0.lease(network: spec.name, address: key, prefix: spec.subnet.prefix, names: names, ifnames: ifnames)
        }
    }

    /// Whether `address` could be leased right now: a host address, not excluded, without a record.
    public func isFree(_ address: IPv4Address) -> Bool {
        spec.subnet.isHostAddress(address) && exclusion(containing: address) == nil && stored[address.value] == nil
    }

    /// The excluded range that holds `address`, if any.
    private func exclusion(containing address: IPv4Address) -> IPv4Range? {
        var low = 0
        var high = exclusions.count
        while low < high {
            let middle = (low + high) / 2
            if exclusions[middle].last < address { low = middle + 1 } else { high = middle }
        }
        return low < exclusions.count && exclusions[low].contains(address) ? exclusions[low] : nil
    }

    /// Sets or replaces the record of an address, keeping counts, the owner index and the cooldown queue right.
    public mutating func put(_ lease: Lease) {
        let key = lease.address.value
        if let old = stored[key] { forget(old, key: key) }
        stored[key] = StoredRecord(lease, names: &names, ifnames: &ifnames)
        switch lease.state {
        case .active:
            counts.active += 1
            if !lease.owner.isEmpty { ownerIndex[ExactKey(lease.owner)] = key }
        case .reserved: counts.reserved += 1
        case .conflict: counts.conflict += 1
        case .cooldown:
            counts.cooldown += 1
            let entry = CoolingEntry(address: key, until: lease.until)
            if lease.until >= latestCoolingEnd {
                cooling.append(entry)
                latestCoolingEnd = lease.until
            } else {
                let index = coolingOutOfOrder.firstIndex { $0.until <= lease.until } ?? coolingOutOfOrder.endIndex
                coolingOutOfOrder.insert(entry, at: index)
            }
            if !lease.owner.isEmpty { coolingOwners[ExactKey(lease.owner)] = key }
        }
    }

    /// Removes the record of an address; the address becomes free at once.
    public mutating func remove(_ address: IPv4Address) {
        guard let old = stored.removeValue(forKey: address.value) else { return }
        forget(old, key: address.value)
        recycled.append(address.value)
    }

    private mutating func forget(_ record: StoredRecord, key: UInt32) {
        switch record.state {
        case .active:
            counts.active -= 1
            if ownerIndex[ExactKey(record.owner)] == key { ownerIndex[ExactKey(record.owner)] = nil }
        case .reserved: counts.reserved -= 1
        case .conflict: counts.conflict -= 1
        case .cooldown:
            counts.cooldown -= 1
            if coolingOwners[ExactKey(record.owner)] == key { coolingOwners[ExactKey(record.owner)] = nil }
        }
    }

    /// Cooldown records whose time has come, oldest first. The caller deletes them (and persists the deletion).
    public mutating func expiredCooldowns(now: Millis) -> [IPv4Address] {
        var ended: [CoolingEntry] = []
        while let entry = cooling.first, entry.until <= now {
            _ = cooling.popFirst()
            ended.append(entry)
        }
        if let entry = coolingOutOfOrder.last, entry.until <= now {
            while let entry = coolingOutOfOrder.last, entry.until <= now {
                ended.append(entry)
                coolingOutOfOrder.removeLast()
            }
            ended.sort { $0.until < $1.until }
        }
        // Skip stale entries: the address was reserved, reused, or its cooldown was renewed since.
        return ended.filter { entry in
            guard let record = stored[entry.address] else { return false }
            return record.state == .cooldown && record.until == entry.until
        }.map { IPv4Address($0.address) }
    }

    /// The next free address, or nil when none is free. Does not take it: the caller `put`s a record.
    public mutating func nextFree() -> IPv4Address? {
        let last = UInt64(spec.subnet.lastHost.value)
        while cursor <= last {
            let candidate = IPv4Address(UInt32(cursor))
            if let range = exclusion(containing: candidate) {
                cursor = UInt64(range.last.value) + 1
                continue
            }
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

/// One record as an `AddressBook` keeps it (see there).
public struct StoredRecord: Sendable, Equatable {
    /// Note and MAC (set on reservations and conflicts only), and an interface name that did not fit the
    /// interface table: one optional reference instead of three strings.
    final class Extra: Sendable, Equatable {
        let note: String
        let mac: String
        let ifname: String?

        init(note: String, mac: String, ifname: String?) {
            self.note = note
            self.mac = mac
            self.ifname = ifname
        }

        static func == (a: Extra, b: Extra) -> Bool {
            a.note.hasSameBytes(as: b.note) && a.mac.hasSameBytes(as: b.mac)
                && a.ifname.map { b.ifname?.hasSameBytes(as: $0) ?? false } ?? (b.ifname == nil)
        }
    }

    /// `ifname` value meaning "the name is in `extra`".
    static let ifnameInExtra = UInt16.max

    var owner: String
    var extra: Extra?
    var created: Millis
    var renewed: Millis
    var until: Millis
    var host: UInt32
    var ifname: UInt16
    var state: LeaseState
    var isStatic: Bool

    init(_ lease: Lease, names: inout NameTable, ifnames: inout NameTable) {
        owner = lease.owner
        host = names.id(lease.host)!
        let ifnameID = ifnames.id(lease.ifname, limit: Int(Self.ifnameInExtra)).map { UInt16($0) }
        ifname = ifnameID ?? Self.ifnameInExtra
        extra =
            lease.note.isEmpty && lease.mac.isEmpty && ifnameID != nil
            ? nil : Extra(note: lease.note, mac: lease.mac, ifname: ifnameID == nil ? lease.ifname : nil)
        created = lease.created
        renewed = lease.renewed
        until = lease.until
        state = lease.state
        isStatic = lease.isStatic
    }

    func lease(network: String, address: UInt32, prefix: Int, names: NameTable, ifnames: NameTable) -> Lease {
        let ifname = ifname == Self.ifnameInExtra ? extra?.ifname ?? "" : ifnames[UInt32(ifname)]
        return Lease(
            network: network,
            address: IPv4Address(address),
            prefix: prefix,
            state: state,
            host: names[host],
            owner: owner,
            ifname: ifname,
            note: extra?.note ?? "",
            mac: extra?.mac ?? "",
            isStatic: isStatic,
            created: created,
            renewed: renewed,
            until: until
        )
    }
}

/// Strings that repeat across many records (host and interface names), stored once and referred to by number.
/// Names are never removed: a table grows with the distinct names a network has seen since the coordinator
/// started (tens of bytes each), not with its leases. Keyed by bytes: a name comes back exactly as it was put in.
struct NameTable: Sendable {
    private var names: [String] = [""]
    private var ids: [ExactKey: UInt32] = [ExactKey(""): 0]

    /// The number of `name`, added if new; nil when the table already holds `limit` names (the caller then
    /// keeps the name itself: correctness never depends on the table's size).
    mutating func id(_ name: String, limit: Int = Int(UInt32.max)) -> UInt32? {
        if let id = ids[ExactKey(name)] { return id }
        guard names.count < limit else { return nil }
        let id = UInt32(names.count)
        names.append(name)
        ids[ExactKey(name)] = id
        return id
    }

    subscript(id: UInt32) -> String { names[Int(id)] }

    /// The number of `name` if the table has it.
    func existingID(_ name: String) -> UInt32? { ids[ExactKey(name)] }
}
