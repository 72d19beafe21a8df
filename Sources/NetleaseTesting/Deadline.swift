import NetleaseTransport

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
    try await withTimeout(timeout, orThrow: { DeadlineExceeded(what: what, timeout: timeout) }, body)
}
