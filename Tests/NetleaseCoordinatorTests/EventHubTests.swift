import NetleaseCoordinator
import NetleaseWire
import Synchronization
import XCTest

final class EventHubTests: XCTestCase {
    func testEventsQueuedBeforeTheWatcherIsReadyArriveInOrderWithOneWakePerBatch() {
        let hub = EventHub()
        let subscription = hub.subscribe()
        hub.publish(.networkDeleted("a"))
        hub.publish(.networkDeleted("b"))
        let wakes = Atomic<Int>(0)
        subscription.onEvents { wakes.add(1, ordering: .relaxed) }
        XCTAssertEqual(wakes.load(ordering: .relaxed), 1, "events already waiting wake the watcher at once")
        hub.publish(.networkDeleted("c"))
        XCTAssertEqual(wakes.load(ordering: .relaxed), 1, "no second wake while the buffer is not drained")
        let taken = subscription.take()
        XCTAssertEqual(taken.events, [.networkDeleted("a"), .networkDeleted("b"), .networkDeleted("c")])
        XCTAssertFalse(taken.ended)
        subscription.inject(.keepalive)
        XCTAssertEqual(wakes.load(ordering: .relaxed), 2)
        XCTAssertEqual(subscription.take().events, [.keepalive])
    }

    func testAWatcherThatFallsBehindIsCutOffAndOthersKeepTheirEvents() {
        let hub = EventHub()
        let slow = hub.subscribe()  // never takes: a connection whose socket does not drain
        let fast = hub.subscribe()
        let slowEnded = Atomic<Int>(0)
        slow.onEvents { if slow.isEnded { slowEnded.add(1, ordering: .relaxed) } }
        var received = 0
        for i in 0...EventHub.bufferLimit {
            hub.publish(.networkDeleted("n\(i)"))
            if i % 100 == 0 { received += fast.take().events.count }
        }
        received += fast.take().events.count
        XCTAssertEqual(received, EventHub.bufferLimit + 1, "a watcher that keeps up gets every event")
        XCTAssertEqual(slowEnded.load(ordering: .relaxed), 1, "the cut-off watcher is woken once to close")
        let cut = slow.take()
        XCTAssertTrue(cut.ended, "a watcher \(EventHub.bufferLimit) events behind is cut off")
        XCTAssertEqual(cut.events, [], "a cut-off watcher holds no events")
        XCTAssertEqual(hub.watcherCount, 1)
        hub.unsubscribe(fast.id)
        XCTAssertTrue(fast.take().ended)
        XCTAssertEqual(hub.watcherCount, 0)
    }
}
