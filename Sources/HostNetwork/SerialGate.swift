import Synchronization

/// A first-come-first-served async lock. An actor alone does not serialize async operations: at every `await`
/// another call may enter and interleave its commands with ours (observe, observe, change, change …). Holding the
/// gate for the whole operation keeps observe-plan-apply of one operation together.
final class SerialGate: Sendable {
    private struct State: Sendable {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Waits until the gate is free and takes it.
    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let takenNow = state.withLock { state in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if takenNow { continuation.resume() }
        }
    }

    /// Hands the gate to the longest waiter, or frees it.
    func release() {
        let next: CheckedContinuation<Void, Never>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
