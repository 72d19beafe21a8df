import Synchronization

/// One request at a time per (network, owner). Two ATTACHes of one owner a moment apart used to run side by side:
/// both asked the coordinator, and the second one's probe heard the first one's fresh container and quarantined
/// the owner's own address. Held across every await of a request (lease, probe, plumbing, release), first come
/// first served; requests of different owners never wait for each other.
final class OwnerLocks: Sendable {
    private struct State: Sendable {
        /// Held keys, each with the requests waiting for it in arrival order.
        var held: [String: [CheckedContinuation<Void, Never>]] = [:]
    }

    private let state = Mutex(State())

    /// Runs `body` while holding `key`.
    func withLock<T: Sendable, Failure: Error>(
        _ key: String,
        _ body: () async throws(Failure) -> T
    ) async throws(Failure) -> T {
        await acquire(key)
        defer { release(key) }
        return try await body()
    }

    /// Keys held right now: requests in flight.
    var busy: Set<String> { state.withLock { Set($0.held.keys) } }

    /// How many requests wait for `key` behind the one holding it.
    func waiting(for key: String) -> Int { state.withLock { $0.held[key]?.count ?? 0 } }

    private func acquire(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.held[key] != nil {
                    state.held[key]!.append(continuation)
                    return false
                }
                state.held[key] = []
                return true
            }
            if now { continuation.resume() }
        }
    }

    private func release(_ key: String) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard var waiting = state.held[key], !waiting.isEmpty else {
                state.held[key] = nil
                return nil
            }
            let first = waiting.removeFirst()
            state.held[key] = waiting
            return first
        }
        next?.resume()
    }
}
