import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Time the coordinator did not observe never counts against a host (DESIGN.md invariant 7): a coordinator that
/// stalls longer than a TTL does not declare live hosts lost when it resumes, while time it did observe still does.
final class ReclaimerStallTests: XCTestCase {
    var directory: String!

    override func setUp() {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("netlease-stall-\(UUID().uuidString)").path
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Injected clocks: the lease clock and the monotonic clock jump together by three TTLs between two passes (the
    /// process was stopped); the host stays up with its epoch. Afterwards, the same silence observed pass by pass
    /// makes it lost: the extension is the stall, not a pardon.
    func testAStallLongerThanTheTTLDoesNotMakeLiveHostsLost() async throws {
        let clock = ManualLeaseClock()
        let monotonic = ManualInstant()
        let store = try SQLiteLeaseStore(directory: directory, clock: clock)
        defer { store.close() }
        _ = try await store.createNetwork(
            NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, leaseTTL: 3)
        )
        let joined = try await store.join(host: "h1", underlay: IPv4Address("10.0.0.1")!, networks: ["prod"])
        let reclaimer = Reclaimer(store: store, interval: .seconds(1), monotonic: { monotonic.now })
        await reclaimer.reclaimOnce()

        clock.advance(seconds: 9)
        monotonic.advance(by: .seconds(9))
        await reclaimer.reclaimOnce()
        let afterStall = try await store.hosts().first { $0.name == "h1" }
        XCTAssertEqual(afterStall?.state, .up, "a stall of the coordinator counted against a live host")
        // The heartbeat that was waiting in the socket is accepted under the same epoch.
        let beat = try await store.heartbeat(host: "h1", epoch: joined.host.epoch)
        XCTAssertEqual(beat.epoch, joined.host.epoch)

        // Observed silence: one second per pass, as the reclaimer runs. Lost once the TTL has passed.
        var passes = 0
        while try await store.hosts().first(where: { $0.name == "h1" })?.state == .up {
            passes += 1
            XCTAssertLessThanOrEqual(passes, 10, "a host silent for 10 observed seconds (TTL 3 s) was never lost")
            if passes > 10 { break }
            clock.advance(seconds: 1)
            monotonic.advance(by: .seconds(1))
            await reclaimer.reclaimOnce()
        }
        XCTAssertGreaterThanOrEqual(passes, 3, "the host was lost before its TTL of observed silence")
    }

    /// The real executable: SIGSTOP for longer than the TTL while a client keeps heartbeating, then SIGCONT. The
    /// coordinator reports the stall and the host is still up with its epoch; no heartbeat was refused.
    func testASIGSTOPpedCoordinatorKeepsLiveHostsAfterSIGCONT() async throws {
        let coordinator = try await CoordinatorProcess.start(directory: directory)
        defer { coordinator.cleanUp() }
        let (epoch, network) = try await coordinator.connect { c in
            let network = try await c.createNetwork(
                NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, leaseTTL: 3)
            )
            return (try await c.join(host: "h1", underlay: IPv4Address("10.0.0.1")!, networks: ["prod"]).epoch, network)
        }
        XCTAssertEqual(network.leaseTTL, 3)
        let endpoint = coordinator.endpoint
        let secret = try coordinator.secret
        let stopped = StallWindow()
        // The agent's part: a heartbeat every TTL/3, each waiting for its reply (the one sent during the stall
        // waits in the socket until the coordinator runs again).
        let heartbeats = Task {
            try await NetleaseConnection.connect(to: endpoint, secret: secret) { c in
                var afterResume = 0
                while afterResume < 3 {
                    _ = try await c.heartbeat(host: "h1", epoch: epoch)
                    if stopped.resumed { afterResume += 1 }
                    try await Task.sleep(for: .seconds(1))  // the heartbeat period, not a synchronisation
                }
            }
        }
        defer { heartbeats.cancel() }
        coordinator.process.signal(SIGSTOP)
        // The scenario itself: the coordinator stays stopped for more than the TTL (3 s).
        try await Task.sleep(for: .seconds(5))
        coordinator.process.signal(SIGCONT)
        stopped.resume()
        // The pass after the stall reports it once it reclaimed; a host declared lost is logged too.
        let deadline = ContinuousClock.now + .seconds(30)
        var log = coordinator.log
        while !log.contains("stalled or was paused") && !log.contains("marked lost") {
            guard ContinuousClock.now < deadline else {
                XCTFail("no reclaim pass reported the stall within 30 s:\n\(log)")
                return
            }
            try await Task.sleep(for: .milliseconds(100))  // polling the log file, bounded by the deadline
            log = coordinator.log
        }
        XCTAssertFalse(log.contains("marked lost"), "a live host was declared lost after the stall:\n\(log)")
        // Every heartbeat, the one queued during the stall and three after it, was accepted under the same epoch.
        try await heartbeats.value
        let host = try await coordinator.connect { try await $0.hosts() }.first { $0.name == "h1" }
        XCTAssertEqual(host?.state, .up)
        XCTAssertEqual(host?.epoch, epoch)
    }
}

/// A monotonic instant moved by hand.
private final class ManualInstant: @unchecked Sendable {
    // @unchecked: `current` is only touched under `lock`.
    private let lock = NSLock()
    private var current = ContinuousClock.now
    var now: ContinuousClock.Instant { lock.withLock { current } }
    func advance(by duration: Duration) { lock.withLock { current += duration } }
}

/// Whether the stopped coordinator was continued.
private final class StallWindow: @unchecked Sendable {
    // @unchecked: `flag` is only touched under `lock`.
    private let lock = NSLock()
    private var flag = false
    var resumed: Bool { lock.withLock { flag } }
    func resume() { lock.withLock { flag = true } }
}
