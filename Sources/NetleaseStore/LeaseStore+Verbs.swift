import NetleaseCore

/// The store's verbs by name, each an operation submitted and awaited. A store implements only `submit(_:)`.
extension LeaseStore {
    /// Submits the operation `make` builds around its completion and returns its result once it is durable.
    public func perform<T: Sendable>(_ make: (@escaping StoreOperation.Done<T>) -> StoreOperation) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit(make { continuation.resume(with: $0) })
        }
    }

    public func createNetwork(_ spec: NetworkSpec) async throws -> NetworkSpec {
        try await perform { .createNetwork(spec, done: $0) }
    }

    public func deleteNetwork(_ name: String) async throws { try await perform { .deleteNetwork(name, done: $0) } }
    public func networks() async throws -> [NetworkSummary] { try await perform { .networks(done: $0) } }
    public func network(_ name: String) async throws -> NetworkSummary {
        try await perform { .network(name, done: $0) }
    }

    /// `lastEpoch`: the highest epoch the host's agent was given before, if it says.
    public func join(
        host: String,
        underlay: IPv4Address,
        networks: [String],
        lastEpoch: Int64? = nil
    ) async throws -> Ledger.JoinResult {
        try await perform { .join(host: host, underlay: underlay, networks: networks, lastEpoch: lastEpoch, done: $0) }
    }

    public func hosts() async throws -> [HostRecord] { try await perform { .hosts(done: $0) } }
    public func removeHost(_ name: String) async throws -> Int { try await perform { .removeHost(name, done: $0) } }

    public func acquire(
        network: String,
        owner: String,
        claim: HostClaim?,
        address: IPv4Address?,
        ifname: String
    ) async throws -> Lease {
        try await perform {
            .acquire(network: network, owner: owner, claim: claim, address: address, ifname: ifname, done: $0)
        }
    }

    public func release(
        network: String,
        owner: String?,
        address: IPv4Address?,
        claim: HostClaim?
    ) async throws
        -> Lease?
    {
        try await perform { .release(network: network, owner: owner, address: address, claim: claim, done: $0) }
    }

    public func heartbeat(host: String, epoch: Int64) async throws -> HostRecord {
        try await perform { .heartbeat(host: host, epoch: epoch, done: $0) }
    }

    public func reserve(network: String, address: IPv4Address, note: String) async throws -> Lease {
        try await perform { .reserve(network: network, address: address, note: note, done: $0) }
    }

    public func unreserve(network: String, address: IPv4Address) async throws {
        try await perform { .unreserve(network: network, address: address, done: $0) }
    }

    public func reportConflict(
        network: String,
        address: IPv4Address,
        mac: String,
        claim: HostClaim
    ) async throws
        -> Lease
    {
        try await perform { .reportConflict(network: network, address: address, mac: mac, claim: claim, done: $0) }
    }

    public func leases(_ filter: Ledger.LeaseFilter) async throws -> [Lease] {
        try await perform { .leases(filter, done: $0) }
    }

    public func reconcile(
        network: String,
        owner: String,
        address: IPv4Address,
        ifname: String,
        claim: HostClaim
    ) async throws -> ReconcileOutcome {
        try await perform {
            .reconcile(network: network, owner: owner, address: address, ifname: ifname, claim: claim, done: $0)
        }
    }

    /// `from`'s active lease of `address` on the claiming host becomes `owner`'s.
    public func handOver(
        network: String,
        address: IPv4Address,
        from: String,
        owner: String,
        ifname: String,
        claim: HostClaim
    ) async throws -> Lease {
        try await perform { done in
            .handOver(
                network: network,
                address: address,
                from: from,
                owner: owner,
                ifname: ifname,
                claim: claim,
                done: done
            )
        }
    }

    /// A reclaim pass; `unobserved`: milliseconds of a stall the caller measured (see `StoreOperation.reclaim`).
    public func reclaim(unobserved: Millis = 0) async throws -> [String] {
        try await perform { .reclaim(unobserved: unobserved, done: $0) }
    }
}
