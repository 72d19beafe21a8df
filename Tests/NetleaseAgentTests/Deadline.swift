import Synchronization
import XCTest

/// How long a test waits for something the agent does in well under a second; generous for a loaded 2-core machine.
let defaultTestDeadline: Duration = .seconds(20)

/// Thrown (after failing the test) when a wait outlives its deadline.
struct DeadlineExceeded: Error, CustomStringConvertible {
    var what: String
    var timeout: Duration
    var description: String { "\(what): nothing within \(timeout)" }
}

/// Runs `body` and returns its result, or fails the test and throws `DeadlineExceeded` after `timeout`.
///
/// XCTest on Linux has no per-test timeout: a wait for an event that never comes would hang the whole run. The body
/// runs in its own task so that the deadline holds even when the body ignores cancellation (a connection's pending
/// read); on timeout it is cancelled and left to finish on its own.
func withDeadline<T: Sendable>(
    _ what: String,
    timeout: Duration = defaultTestDeadline,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = FirstOutcome<T>()
    let work = Task {
        do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) }
    }
    let timer = Task {
        do { try await Task.sleep(for: timeout) } catch { return }
        outcome.finish(.failure(DeadlineExceeded(what: what, timeout: timeout)))
    }
    let result = await outcome.first()
    timer.cancel()
    work.cancel()
    if case .failure(let error as DeadlineExceeded) = result {
        XCTFail("\(error)", file: file, line: line)
    }
    return try result.get()
}

/// The first of two racing results; the later one is dropped.
private final class FirstOutcome<T: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Result<T, any Error>, Never>)
        case finished(Result<T, any Error>)
        case delivered
    }

    private let state = Mutex(State.empty)

    func finish(_ result: Result<T, any Error>) {
        let waiting = state.withLock { state -> CheckedContinuation<Result<T, any Error>, Never>? in
            switch state {
            case .empty:
                state = .finished(result)
                return nil
            case .waiting(let continuation):
                state = .delivered
                return continuation
            case .finished, .delivered:
                return nil
            }
        }
        waiting?.resume(returning: result)
    }

    func first() async -> Result<T, any Error> {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Result<T, any Error>? in
                if case .finished(let result) = state {
                    state = .delivered
                    return result
                }
                state = .waiting(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
