import NetleaseWire
import Synchronization

/// Fans events out to watching connections. Each watcher has a bounded buffer; one that falls too far behind is
/// cut off (its stream ends, the connection closes) and re-syncs by watching again, so a slow watcher never makes
/// the coordinator hold unbounded memory or wait.
public final class EventHub: Sendable {
    public static let bufferLimit = 4096
    private let subscribers = Mutex<[Int: AsyncStream<Event>.Continuation]>([:])
    private let nextID = Atomic<Int>(0)

    public init() {}

    public struct Subscription: Sendable {
        public let id: Int
        public let events: AsyncStream<Event>
        let continuation: AsyncStream<Event>.Continuation

        /// Adds an event for this watcher only (keepalives).
        public func inject(_ event: Event) { continuation.yield(event) }
    }

    public func subscribe() -> Subscription {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream.makeStream(
            of: Event.self, bufferingPolicy: .bufferingOldest(EventHub.bufferLimit))
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        subscribers.withLock { $0[id] = continuation }
        return Subscription(id: id, events: stream, continuation: continuation)
    }

    public func unsubscribe(_ id: Int) {
        let continuation = subscribers.withLock { $0.removeValue(forKey: id) }
        continuation?.finish()
    }

    public func publish(_ event: Event) {
        let overflowed = subscribers.withLock { subscribers -> [Int] in
            var overflowed: [Int] = []
            for (id, continuation) in subscribers {
                if case .dropped = continuation.yield(event) { overflowed.append(id) }
            }
            return overflowed
        }
        for id in overflowed { unsubscribe(id) }
    }

    public var watcherCount: Int { subscribers.withLock { $0.count } }
}
