import Synchronization

/// Runs `body` and returns its result, or throws `timedOut()` once `timeout` has passed, whichever comes first.
///
/// At the deadline `body` is cancelled but not awaited: work that ignores cancellation (a call stuck on a peer that
/// went silent, an unstructured task being awaited) cannot hold the caller past the deadline.
public func withTimeout<T: Sendable>(
    _ timeout: Duration,
    orThrow timedOut: @escaping @Sendable () -> any Error,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = TimeoutRace<T>()
    return try await withCheckedThrowingContinuation { continuation in
        race.arm(continuation)
        race.add(
            Task {
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled else { return }
                race.finish(.failure(timedOut()))
            }
        )
        race.add(
            Task {
                do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
            }
        )
    }
}

/// The work and the timer of one `withTimeout`: the first to finish answers the caller, the other is cancelled.
private final class TimeoutRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
        var done = false
    }

    private let state = Mutex(State())

    func arm(_ continuation: CheckedContinuation<T, any Error>) { state.withLock { $0.continuation = continuation } }

    func add(_ task: Task<Void, Never>) {
        let late = state.withLock { s -> Bool in
            s.tasks.append(task)
            return s.done
        }
        if late { task.cancel() }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { s -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            defer {
                s.continuation = nil
                s.done = true
            }
            return (s.done ? nil : s.continuation, s.tasks)
        }
        guard let continuation else { return }
        continuation.resume(with: result)
        for task in tasks { task.cancel() }
    }
}
