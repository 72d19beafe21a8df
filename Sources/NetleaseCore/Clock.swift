import Foundation

/// Milliseconds since the Unix epoch, as the coordinator's clock reads it.
public typealias Millis = Int64

/// The coordinator's only source of time. TTLs, cooldowns and heartbeats are measured with it and with nothing
/// a client sends, so a client's wall clock cannot move them.
public protocol LeaseClock: Sendable {
    func now() -> Millis
}

/// Wall-clock time at start, advanced by the monotonic clock afterwards: readable timestamps that never go
/// backwards or jump when the system clock is stepped while the process runs.
public struct SystemLeaseClock: LeaseClock {
    private let startWall: Millis
    private let startInstant: ContinuousClock.Instant

    public init() {
        startWall = Millis(Date().timeIntervalSince1970 * 1000)
        startInstant = ContinuousClock.now
    }

    public func now() -> Millis {
        let elapsed = ContinuousClock.now - startInstant
        let (seconds, attoseconds) = elapsed.components
        return startWall + seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
