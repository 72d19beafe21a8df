import NetleaseCore

/// One request to a `LeaseStore`: a verb with its arguments and the completion typed with its result. Every store
/// verb is one case here; `LeaseStore.submit(_:)` is the one primitive every store implements, and the named verbs
/// (`LeaseStore+Verbs.swift`) are built on it.
///
/// Design notes:
/// - The completion travels inside the operation, so a store that only checks or forwards (the PostgreSQL store's
///   text check, a coordinator's leadership gate) handles every verb in one method without knowing its result type,
///   and the hot path allocates nothing for the operation itself: no case is `indirect`, so the value lives inline
///   and is passed by reference, and the completion is the caller's closure itself, called exactly once.
/// - `dispatch(to:)` is the only place that maps a verb to its ledger step. A store that refuses an operation calls
///   `fail(_:)`, which completes it with the error without running its step.
public enum StoreOperation: Sendable {
    /// The completion of an operation that yields `T`, called once its effect is durable: on the store's writer
    /// thread, or on the submitter's before `submit` returns when nothing is pending. It must not block.
    public typealias Done<T> = @Sendable (Result<T, Error>) -> Void

    case createNetwork(NetworkSpec, done: Done<NetworkSpec>)
    case deleteNetwork(String, done: Done<Void>)
    case networks(done: Done<[NetworkSummary]>)
    case network(String, done: Done<NetworkSummary>)
    /// `Ledger.join`; `lastEpoch` is the highest epoch the host's agent was given before, if it says.
    case join(host: String, underlay: IPv4Address, networks: [String], lastEpoch: Int64?, done: Done<Ledger.JoinResult>)
    case hosts(done: Done<[HostRecord]>)
    case removeHost(String, done: Done<Int>)
    case acquire(
        network: String,
        owner: String,
        claim: HostClaim?,
        address: IPv4Address?,
        ifname: String,
        done: Done<Lease>
    )
    case release(network: String, owner: String?, address: IPv4Address?, claim: HostClaim?, done: Done<Lease?>)
    case heartbeat(host: String, epoch: Int64, done: Done<HostRecord>)
    case reserve(network: String, address: IPv4Address, note: String, done: Done<Lease>)
    case unreserve(network: String, address: IPv4Address, done: Done<Void>)
    case reportConflict(network: String, address: IPv4Address, mac: String, claim: HostClaim, done: Done<Lease>)
    case leases(Ledger.LeaseFilter, done: Done<[Lease]>)
    case reconcile(
        network: String,
        owner: String,
        address: IPv4Address,
        ifname: String,
        claim: HostClaim,
        done: Done<ReconcileOutcome>
    )
    /// `Ledger.handOver`: `from`'s active lease of `address` on the claiming host becomes `owner`'s.
    case handOver(
        network: String,
        address: IPv4Address,
        from: String,
        owner: String,
        ifname: String,
        claim: HostClaim,
        done: Done<Lease>
    )
    /// Marks hosts lost after their TTL, moves their leases to cooldown, ends finished cooldowns. `unobserved`
    /// milliseconds the coordinator did not run (a stall the caller measured) first extend every up host's deadline
    /// (`Ledger.reclaim(now:unobserved:changes:)`).
    case reclaim(unobserved: Millis, done: Done<[String]>)
}

/// What an operation does to the ledger: run under the store's lock at `now`, appending every row change it makes.
public typealias LedgerStep<T> = (inout Ledger, Millis, inout [LedgerChange]) throws -> T

/// Takes an operation as its completion and ledger step: the group-commit store runs the step, a refusal only
/// completes.
protocol LedgerStepHandler {
    func handle<T: Sendable>(_ done: @escaping StoreOperation.Done<T>, step: LedgerStep<T>)
}

extension StoreOperation {
    /// Completes the operation with `error` without running it.
    public func fail(_ error: Error) {
        dispatch(to: Refusal(error: error))
    }

    /// Hands this operation's completion and ledger step (`$0` the ledger, `$1` now, `$2` the changes) to `handler`.
    func dispatch(to handler: some LedgerStepHandler) {
        switch self {
        case .createNetwork(let spec, let done):
            handler.handle(done) { try $0.createNetwork(spec, now: $1, changes: &$2) }
        case .deleteNetwork(let name, let done):
            handler.handle(done) { try $0.deleteNetwork(name, now: $1, changes: &$2) }
        case .networks(let done):
            handler.handle(done) { ledger, _, _ in ledger.summaries() }
        case .network(let name, let done):
            handler.handle(done) { ledger, _, _ in try ledger.summary(of: name) }
        case .join(let host, let underlay, let networks, let lastEpoch, let done):
            handler.handle(done) {
                try $0.join(
                    host: host,
                    underlay: underlay,
                    networks: networks,
                    lastEpoch: lastEpoch,
                    now: $1,
                    changes: &$2
                )
            }
        case .hosts(let done):
            handler.handle(done) { ledger, _, _ in ledger.hosts.values.sorted { $0.name < $1.name } }
        case .removeHost(let name, let done):
            handler.handle(done) { try $0.removeHost(name, now: $1, changes: &$2) }
        case .acquire(let network, let owner, let claim, let address, let ifname, let done):
            handler.handle(done) {
                try $0.acquire(
                    network: network,
                    owner: owner,
                    claim: claim,
                    wanted: address,
                    ifname: ifname,
                    now: $1,
                    changes: &$2
                )
            }
        case .release(let network, let owner, let address, let claim, let done):
            handler.handle(done) {
                try $0.release(network: network, owner: owner, address: address, claim: claim, now: $1, changes: &$2)
            }
        case .heartbeat(let host, let epoch, let done):
            handler.handle(done) { try $0.heartbeat(host: host, epoch: epoch, now: $1, changes: &$2) }
        case .reserve(let network, let address, let note, let done):
            handler.handle(done) {
                try $0.reserve(network: network, address: address, note: note, now: $1, changes: &$2)
            }
        case .unreserve(let network, let address, let done):
            handler.handle(done) { try $0.unreserve(network: network, address: address, now: $1, changes: &$2) }
        case .reportConflict(let network, let address, let mac, let claim, let done):
            handler.handle(done) {
                try $0.reportConflict(network: network, address: address, mac: mac, claim: claim, now: $1, changes: &$2)
            }
        case .leases(let filter, let done):
            handler.handle(done) { ledger, _, _ in try ledger.leases(filter) }
        case .reconcile(let network, let owner, let address, let ifname, let claim, let done):
            handler.handle(done) {
                try $0.reconcile(
                    network: network,
                    owner: owner,
                    address: address,
                    ifname: ifname,
                    claim: claim,
                    now: $1,
                    changes: &$2
                )
            }
        case .handOver(let network, let address, let from, let owner, let ifname, let claim, let done):
            handler.handle(done) {
                try $0.handOver(
                    network: network,
                    address: address,
                    from: from,
                    to: owner,
                    ifname: ifname,
                    claim: claim,
                    now: $1,
                    changes: &$2
                )
            }
        case .reclaim(let unobserved, let done):
            handler.handle(done) { $0.reclaim(now: $1, unobserved: unobserved, changes: &$2) }
        }
    }
}

/// Completes every operation with one error, running nothing.
private struct Refusal: LedgerStepHandler {
    let error: Error

    func handle<T: Sendable>(_ done: @escaping StoreOperation.Done<T>, step: LedgerStep<T>) {
        done(.failure(error))
    }
}

extension Ledger {
    /// Every network with its pool counts, by name.
    fileprivate func summaries() -> [NetworkSummary] {
        books.keys.sorted().map { NetworkSummary(spec: books[$0]!.spec, counts: books[$0]!.counts) }
    }

    fileprivate func summary(of name: String) throws -> NetworkSummary {
        let book = try network(name)
        return NetworkSummary(spec: book.spec, counts: book.counts)
    }
}
