import NetleaseCore
import NetleaseTransport

/// How `NetleaseConnection.connectToLeader` paces its search for the leader among several coordinators: how often
/// it tries each address, and the pause before moving on to the next one — growing from `firstPause`, bounded by
/// `maxPause`, each drawn at random from its upper half so that many clients of one failed coordinator do not come
/// back in step.
public struct LeaderSearch: Sendable {
    /// How many times each address is tried at most (a takeover in progress may send a client round once more).
    public var rounds: Int
    public var firstPause: Duration
    public var maxPause: Duration
    /// Waits for a pause; tests replace it to record the pauses instead of sleeping.
    public var pause: @Sendable (Duration) async throws -> Void

    public init(
        rounds: Int = 2,
        firstPause: Duration = .milliseconds(50),
        maxPause: Duration = .seconds(1),
        pause: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.rounds = rounds
        self.firstPause = firstPause
        self.maxPause = maxPause
        self.pause = pause
    }

    /// Each address twice, pausing 50 ms, 100 ms, 200 ms … up to 1 s (less jitter) between addresses.
    public static let standard = LeaderSearch()

    /// The pause after `attempts` addresses were tried in vain: `firstPause` doubled per attempt after the first,
    /// at most `maxPause`, then a random point in its upper half.
    public func delay(after attempts: Int) -> Duration {
        var ceiling = firstPause
        for _ in 1..<max(attempts, 1) where ceiling < maxPause { ceiling *= 2 }
        ceiling = min(ceiling, maxPause)
        return ceiling / 2 + ceiling / 2 * Double.random(in: 0...1)
    }

    /// What each address answered last, in the order they were first tried, for the final `unavailable`.
    struct Answers: CustomStringConvertible {
        private var order: [Endpoint] = []
        private var last: [Endpoint: String] = [:]
        /// A `not-leader` hint was followed already in this call.
        var followedHint = false
        /// Some coordinator answered (`not-leader`); false when none could be reached at all.
        private(set) var anyAnswered = false
        /// The last error, as it came.
        private(set) var lastError: NetleaseError?

        mutating func record(_ endpoint: Endpoint, _ error: NetleaseError) {
            if last[endpoint] == nil { order.append(endpoint) }
            last[endpoint] = "\(error.code.rawValue) \(error.message)"
            if error.code == .notLeader { anyAnswered = true }
            lastError = error
        }

        /// What the search ends with: the one address's own error when there was one address and it could not be
        /// reached; otherwise what every address answered.
        func failure(addresses: Int) -> NetleaseError {
            if addresses == 1, !anyAnswered, let lastError { return lastError }
            let what = anyAnswered ? "no coordinator leads" : "no coordinator could be reached"
            return NetleaseError(.unavailable, "\(what): \(self)")
        }

        var description: String {
            order.map { "\($0) answered \(last[$0] ?? "")" }.joined(separator: "; ")
        }
    }
}
