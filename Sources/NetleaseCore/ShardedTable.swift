/// A dictionary split into a fixed number of shards.
///
/// A Swift `Dictionary` grows by rehashing every entry at once. The ledger's tables are changed under the store's
/// lock, so one growth step of a table with 100,000 leases stopped every request for about 70 ms (measured: the
/// open-loop bench's p99 at 10,000 acquires/s was made of these stalls, one each time the table doubled). With 64
/// shards a growth step rehashes 1/64 of the entries; lookups cost one extra shard index.
struct ShardedTable<Key: Hashable & Sendable, Value: Sendable>: Sendable, Sequence {
    static var shardCount: Int { 64 }
    private var shards: [[Key: Value]]
    private let shardOf: @Sendable (Key) -> Int
    private(set) var count = 0

    /// `shardOf` maps a key to any Int; it is reduced modulo the shard count.
    init(shardOf: @escaping @Sendable (Key) -> Int) {
        shards = Array(repeating: [:], count: Self.shardCount)
        self.shardOf = shardOf
    }

    private func shard(_ key: Key) -> Int { Int(UInt(bitPattern: shardOf(key)) % UInt(Self.shardCount)) }

    subscript(key: Key) -> Value? {
        get { shards[shard(key)][key] }
        set {
            if let newValue {
                if shards[shard(key)].updateValue(newValue, forKey: key) == nil { count += 1 }
            } else {
                removeValue(forKey: key)
            }
        }
    }

    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        let removed = shards[shard(key)].removeValue(forKey: key)
        if removed != nil { count -= 1 }
        return removed
    }

    /// Every entry, shard by shard (no particular order).
    func makeIterator() -> FlattenSequence<[[Key: Value]]>.Iterator { shards.joined().makeIterator() }

    /// The entries as a plain dictionary: for tests and tools, not hot paths.
    var dictionary: [Key: Value] {
        var all: [Key: Value] = [:]
        all.reserveCapacity(count)
        for shard in shards { all.merge(shard) { a, _ in a } }
        return all
    }
}
