import Foundation
import NetleaseCore

/// A clock moved by hand, for tests.
public final class ManualLeaseClock: LeaseClock, @unchecked Sendable {
    // @unchecked: every access to `current` goes through `lock`.
    private let lock = NSLock()
    private var current: Millis

    public init(_ start: Millis = 1_700_000_000_000) { current = start }

    public func now() -> Millis { lock.withLock { current } }

    public func advance(seconds: Double) {
        lock.withLock { current += Millis(seconds * 1000) }
    }
}
