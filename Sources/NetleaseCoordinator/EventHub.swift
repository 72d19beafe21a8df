import NetleaseWire
import Synchronization

/// Fans events out to watching connections. Each watcher has a bounded buffer that its connection drains when
/// its socket accepts more; one that falls `bufferLimit` events behind is cut off (the connection closes) and
/// re-syncs by watching again, so a slow watcher never makes the coordinator hold unbounded memory or wait.
public final class EventHub: Sendable {
    public static let bufferLimit = 4096
    private let subscribers = Mutex<[Int: Subscription]>([:])
    private let nextID = Atomic<Int>(0)

    public init() {}

    /// One watcher's buffer. Events queue here from the moment of subscribing (so none is lost between a
    /// snapshot and the first event); the watcher takes them when it can write them.
    public final class Subscription: Sendable {
        public let id: Int
        private struct State {
            var events: [Event] = []
            var wake: (@Sendable () -> Void)?
            var ended = false
        }
        private let state = Mutex(State())

        init(id: Int) { self.id = id }

        /// `wake` is called (on the publishing thread; it must not block) whenever an event arrives to an empty
        /// buffer and when the subscription ends; the watcher then calls `take()`. Called at once if events are
        /// already waiting.
        public func onEvents(_ wake: @escaping @Sendable () -> Void) {
            let pending = state.withLock { s in
                s.wake = wake
                return !s.events.isEmpty || s.ended
            }
            if pending { wake() }
        }

        /// The buffered events, oldest first, and whether the subscription has ended (cut off or unsubscribed;
        /// no event follows).
        public func take() -> (events: [Event], ended: Bool) {
            state.withLock { s in
                let events = s.events
                s.events = []
                return (events, s.ended)
            }
        }

        /// Whether the subscription was cut off or unsubscribed.
        public var isEnded: Bool { state.withLock { $0.ended } }

        /// Adds an event for this watcher only (keepalives).
        public func inject(_ event: Event) { _ = offer(event) }

        /// Queues `event`; false when the buffer is full (the watcher is then ended).
        fileprivate func offer(_ event: Event) -> Bool {
            let (accepted, wake) = state.withLock { s -> (Bool, (@Sendable () -> Void)?) in
                if s.ended { return (true, nil) }
                guard s.events.count < EventHub.bufferLimit else {
                    s.ended = true
                    s.events = []
                    return (false, s.wake)
                }
                s.events.append(event)
                return (true, s.events.count == 1 ? s.wake : nil)
            }
            wake?()
            return accepted
        }

        fileprivate func end() {
            let wake = state.withLock { s -> (@Sendable () -> Void)? in
                if s.ended { return nil }
                s.ended = true
                return s.wake
            }
            wake?()
        }
    }

    public func subscribe() -> Subscription {
        let subscription = Subscription(id: nextID.add(1, ordering: .relaxed).newValue)
        subscribers.withLock { $0[subscription.id] = subscription }
        return subscription
    }

    public func unsubscribe(_ id: Int) {
        subscribers.withLock { $0.removeValue(forKey: id) }?.end()
    }

    public func publish(_ event: Event) {
        let all = subscribers.withLock { Array($0.values) }
        for subscription in all where !subscription.offer(event) {
            unsubscribe(subscription.id)
        }
    }

    public var watcherCount: Int { subscribers.withLock { $0.count } }
}
