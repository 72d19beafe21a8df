import Synchronization

/// Thrown by `withDeadline` when the awaited work did not finish in time.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let what: String
    public let timeout: Duration

    public var description: String { "\(what): not done within \(timeout)" }
}

/// Runs `body` and returns its result, or throws `DeadlineExceeded` once `timeout` has passed: tests wait for an
/// observed state or event instead of sleeping, and a regression fails the test instead of hanging it.
///
/// At the deadline `body` is cancelled but not awaited: work that ignores cancellation (awaiting an unstructured
/// task, say a service group's run) must still fail the test rather than hang it.
public func withDeadline<T: Sendable>(
    _ timeout: Duration,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withCheckedThrowingContinuation { continuation in
        race.start(continuation)
        let work = Task {
            do {
                race.finish(.success(try await body()))
            } catch {
                race.finish(.failure(error))
            }
        }
        race.arm(
            Task {
                try await Task.sleep(for: timeout)
                work.cancel()
                race.finish(.failure(DeadlineExceeded(what: what, timeout: timeout)))
            }
        )
    }
}

/// The work and the timer of one `withDeadline`: whichever finishes first resumes the caller, the other finds
/// nothing left to resume.
private final class DeadlineRace<T: Sendable>: Sendable {
    private let state = Mutex<(waiting: CheckedContinuation<T, Error>?, timer: Task<Void, Error>?)>((nil, nil))

    func start(_ continuation: CheckedContinuation<T, Error>) { state.withLock { $0.waiting = continuation } }

    func arm(_ timer: Task<Void, Error>) {
        let done = state.withLock { state in
            state.timer = timer
            return state.waiting == nil
        }
        if done { timer.cancel() }
    }

    func finish(_ result: Result<T, Error>) {
        let (waiting, timer) = state.withLock { state in
            defer { state = (nil, nil) }
            return state
        }
        timer?.cancel()
        waiting?.resume(with: result)
    }
}
