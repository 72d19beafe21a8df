import NetleaseCore
import NetleaseStore
import Synchronization

/// The store a coordinator on a shared database serves from: the store of its current term while it leads and its
/// own leadership lease runs, `not-leader` (naming the leader) otherwise. `Leadership` switches it; the server and
/// the reclaimer only see a `LeaseStore`.
///
/// Design notes:
/// - Every request checks the lease against the monotonic clock before it touches the ledger, so a leader that
///   missed its renewals answers nothing — not even listings from memory — from the moment its lease ends, which
///   is before any standby may take over (the lease is shorter than the takeover timeout).
/// - A request admitted just before the lease ends is still answered only after its commit, and the commit
///   re-checks the term in the database: an acknowledgement is never given under a term that was taken.
/// - The store of a term is replaced as a whole: a new leader opens a new store (loading the state), and a deposed
///   one's store is closed, so no ledger outlives the term it was loaded under.
public final class LeadershipGate: LeaseStore {
    private struct State {
        var store: (any LeaseStore)?
        var status: LeadershipStatus
        /// The leader's own lease; it serves only before this instant.
        var leaseEnd: ContinuousClock.Instant
        /// Last identity of a store of this coordinator, for replies while it does not lead.
        var identity: StoreIdentity
    }

    private let state: Mutex<State>

    public init() {
        state = Mutex(
            State(
                store: nil,
                status: LeadershipStatus(role: .standby, serving: false, leader: "", term: 0),
                leaseEnd: .now,
                identity: StoreIdentity(id: "", generation: 0)
            )
        )
    }

    // MARK: driven by Leadership

    /// Starts serving from `store` (just opened for `term`) until `leaseEnd`.
    func lead(_ store: any LeaseStore, term: Int64, leader: String, until leaseEnd: ContinuousClock.Instant) {
        state.withLock { s in
            s.store = store
            s.status = LeadershipStatus(role: .leader, serving: true, leader: leader, term: term)
            s.leaseEnd = leaseEnd
            s.identity = store.identity()
        }
    }

    /// A renewal succeeded: serve until `leaseEnd`.
    func extend(until leaseEnd: ContinuousClock.Instant) {
        state.withLock { s in
            guard s.store != nil else { return }
            s.leaseEnd = max(s.leaseEnd, leaseEnd)
        }
    }

    /// Stops leading (deposed, or shutting down): returns the store of the ended term for the caller to close.
    func follow(leader: String, term: Int64) -> (any LeaseStore)? {
        state.withLock { s in
            let store = s.store
            if let store { s.identity = store.identity() }
            s.store = nil
            s.status = LeadershipStatus(role: .standby, serving: false, leader: leader, term: term)
            return store
        }
    }

    /// A standby learned who leads.
    func observed(leader: String, term: Int64) {
        state.withLock { s in
            guard s.store == nil else { return }
            s.status.leader = leader
            s.status.term = term
        }
    }

    /// True while leading, also after the lease ran out (until deposed).
    var isLeading: Bool { state.withLock { $0.store != nil } }

    // MARK: serving

    /// The store to serve from now, or the refusal.
    func current() throws -> any LeaseStore {
        let now = ContinuousClock.now
        return try state.withLock { s in
            guard let store = s.store, now < s.leaseEnd else {
                var status = s.status
                status.serving = false
                throw status.refusal
            }
            return store
        }
    }

    public func leadershipStatus() -> LeadershipStatus? {
        let now = ContinuousClock.now
        return state.withLock { s in
            var status = s.status
            status.serving = s.store != nil && now < s.leaseEnd
            return status
        }
    }

    public var backend: StoreBackend { .postgres }

    /// Forwards `operation` to the store of the current term, or fails it with the refusal.
    public func submit(_ operation: StoreOperation) {
        let store: any LeaseStore
        do {
            store = try current()
        } catch {
            return operation.fail(error)
        }
        store.submit(operation)
    }

    public func statistics() -> StoreStatistics {
        state.withLock { $0.store }?.statistics() ?? StoreStatistics()
    }

    public func identity() -> StoreIdentity {
        let (store, identity) = state.withLock { ($0.store, $0.identity) }
        return store?.identity() ?? identity
    }

    public func backup(to path: String) async throws -> StoreIdentity { try await current().backup(to: path) }

    /// Closes the store of the current term, if any; the gate then refuses everything.
    public func close() {
        let store = state.withLock { s -> (any LeaseStore)? in
            let store = s.store
            s.store = nil
            s.status.role = .standby
            s.status.serving = false
            return store
        }
        store?.close()
    }
}
