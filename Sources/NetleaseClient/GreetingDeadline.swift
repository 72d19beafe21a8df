import NIOCore
import Synchronization

/// Closes a connection whose greeting has not arrived in time, so that a peer that accepts but never greets (a
/// stalled process, something that is not a netlease server) fails `connect` instead of hanging it.
///
/// The timer runs on the channel's event loop, the reader on a task; they settle through one atomic state, so
/// exactly one wins: a greeting that arrives just as the timer fires is either used (the timer does nothing) or
/// reported as late (the timer closed the channel), never half used.
final class GreetingDeadline: Sendable {
    private static let waiting = 0
    private static let settled = 1
    private static let expired = 2

    private let state = Atomic<Int>(GreetingDeadline.waiting)
    private let timer = Mutex<Scheduled<Void>?>(nil)

    private init() {}

    /// Starts the timer on `channel`'s event loop.
    static func arm(_ channel: any Channel, timeout: Duration) -> GreetingDeadline {
        let deadline = GreetingDeadline()
        let scheduled = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            if deadline.state.compareExchange(expected: waiting, desired: expired, ordering: .relaxed).exchanged {
                channel.close(promise: nil)
            }
        }
        deadline.timer.withLock { $0 = scheduled }
        return deadline
    }

    /// Reading the greeting ended (with a line, the peer closing, or an error): stops the timer. False when the
    /// timer came first and closed the channel, i.e. the greeting is late whatever the read returned.
    func settle() -> Bool {
        timer.withLock { $0?.cancel() }
        return state.compareExchange(expected: Self.waiting, desired: Self.settled, ordering: .relaxed).exchanged
    }
}
