/// poll()'s timeout argument for a wait that ends at a deadline.
enum PollTimeout {
    /// Whole milliseconds from `now` to `deadline`, rounded up so poll() never wakes early and spins; 0 once the
    /// deadline has passed, -1 (wait without limit) without a deadline.
    static func milliseconds(
        until deadline: ContinuousClock.Instant?,
        from now: ContinuousClock.Instant = .now
    ) -> Int32 {
        guard let deadline else { return -1 }
        guard deadline > now else { return 0 }
        let (seconds, attoseconds) = (deadline - now).components
        let millis = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: millis)
    }
}
