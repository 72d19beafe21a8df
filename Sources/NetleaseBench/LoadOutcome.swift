/// What a load run measured: every connection's results and the window they count in.
struct LoadOutcome: Sendable {
    var connections: [ConnectionResult]
    var startNs: UInt64
    var deadlineNs: UInt64
    /// Measured window in seconds: the requested duration, or less when the pool budget ran out first.
    var window: Double
    var budgetExhausted: Bool

    /// The outcome of a run that started at `startNs`: when the pool ran out before the deadline, the window ends
    /// with the last reply to an acquire. `exhaustedAt`: when the budget ran out (0: it did not).
    init(_ results: [ConnectionResult], exhaustedAt: UInt64, startNs: UInt64, deadlineNs: UInt64) {
        var endNs = deadlineNs
        if exhaustedAt > 0 && exhaustedAt < deadlineNs {
            endNs = min(deadlineNs, max(exhaustedAt, results.map(\.lastReplyNs).max() ?? exhaustedAt))
        }
        connections = results
        self.startNs = startNs
        self.deadlineNs = deadlineNs
        window = Double(endNs - startNs) / 1e9
        budgetExhausted = endNs < deadlineNs
    }
}
