import Foundation
import Logging
import NetleaseTesting
import NetleaseTransport
import ServiceLifecycle
import XCTest

/// sd_notify spoken natively, against a real datagram socket standing in for systemd's.
final class SystemdNotifyTests: XCTestCase {
    private var directory = ""
    private var recorders: [NotifySocketRecorder] = []

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        for recorder in recorders { recorder.close() }
        recorders = []
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func recorder(abstract: Bool = false) throws -> NotifySocketRecorder {
        let recorder =
            abstract
            ? try NotifySocketRecorder(path: "netlease-test-\(UUID().uuidString)", abstract: true)
            : try NotifySocketRecorder(path: directory + "/notify")
        recorders.append(recorder)
        return recorder
    }

    func testTheEnvironmentDecides() {
        XCTAssertNil(SystemdNotifier(environment: [:]))
        XCTAssertNil(SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"]))
        XCTAssertNil(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@"]))
        let plain = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"])
        XCTAssertEqual(plain?.socketName, "/run/systemd/notify")
        XCTAssertNil(plain?.watchdogInterval)
        let watched = SystemdNotifier(
            environment: ["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"],
            pid: 42
        )
        XCTAssertEqual(watched?.watchdogInterval, .seconds(15))
        let mine = SystemdNotifier(
            environment: ["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"],
            pid: 42
        )
        XCTAssertEqual(mine?.watchdogInterval, .seconds(1))
        // The watchdog is another process's (a parent that ran us as a helper).
        let other = SystemdNotifier(
            environment: ["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "7"],
            pid: 42
        )
        XCTAssertNil(other?.watchdogInterval)
    }

    func testMessagesReachAPathSocket() async throws {
        let socket = try recorder()
        let notifier = try XCTUnwrap(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.environmentValue]))
        XCTAssertTrue(notifier.send(["STATUS=opening\nthe store"]))
        notifier.ready(status: "serving on 127.0.0.1:7420")
        let ready = await socket.first(within: .seconds(10)) { $0.has("READY=1") }
        XCTAssertEqual(ready?.assignments, ["READY=1", "STATUS=serving on 127.0.0.1:7420"])
        // A newline inside a value would start another assignment.
        XCTAssertEqual(socket.messages.first?.assignments, ["STATUS=opening the store"])
    }

    func testMessagesReachAnAbstractSocket() async throws {
        let socket = try recorder(abstract: true)
        XCTAssertTrue(socket.environmentValue.hasPrefix("@"))
        let notifier = try XCTUnwrap(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.environmentValue]))
        notifier.stopping()
        let stopping = await socket.first(within: .seconds(10)) { $0.has("STOPPING=1") }
        XCTAssertNotNil(stopping)
    }

    func testNoListenerIsNoFailure() {
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": directory + "/nobody"])
        XCTAssertEqual(notifier?.send(["READY=1"]), false)
    }

    /// WATCHDOG_USEC=200000: a ping every 100 ms, and STOPPING=1 as soon as the graceful stop begins.
    func testWatchdogPingsAtTheIntervalAndStoppingOnShutdown() async throws {
        let socket = try recorder()
        let notifier = try XCTUnwrap(
            SystemdNotifier(
                environment: ["NOTIFY_SOCKET": socket.environmentValue, "WATCHDOG_USEC": "200000"])
        )
        let group = ServiceGroup(
            services: [SystemdNotifyService(notifier: notifier)],
            logger: Logger(label: "test.notify")
        )
        let running = Task { try await group.run() }
        let started = ContinuousClock.now
        let sixth = await socket.first(within: .seconds(20)) { _ in
            socket.messages.filter { $0.has("WATCHDOG=1") }.count >= 6
        }
        XCTAssertNotNil(sixth, "fewer than 6 pings")
        let pings = socket.messages.filter { $0.has("WATCHDOG=1") }.map(\.arrived)
        // Six pings need at least five intervals; on a loaded machine a ping may come late, never early.
        XCTAssertGreaterThanOrEqual(pings[5] - pings[0], .milliseconds(450))
        XCTAssertLessThan(pings[0] - started, .seconds(5))
        XCTAssertTrue(socket.messages.allSatisfy { !$0.has("STOPPING=1") })

        await group.triggerGracefulShutdown()
        try await running.value
        let stopping = await socket.first(within: .seconds(10)) { $0.has("STOPPING=1") }
        XCTAssertNotNil(stopping)
    }

    func testAnUnhealthyDaemonMissesItsPings() async throws {
        let socket = try recorder()
        let notifier = try XCTUnwrap(
            SystemdNotifier(
                environment: ["NOTIFY_SOCKET": socket.environmentValue, "WATCHDOG_USEC": "100000"])
        )
        // A check that never answers, like an event loop blocked by a stuck handler.
        let service = SystemdNotifyService(notifier: notifier) {
            try? await Task.sleep(for: .seconds(3600))
            return true
        }
        let group = ServiceGroup(services: [service], logger: Logger(label: "test.notify"))
        let running = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(500))
        await group.triggerGracefulShutdown()
        try await running.value
        XCTAssertTrue(socket.messages.allSatisfy { !$0.has("WATCHDOG=1") })
        let stopping = await socket.first(within: .seconds(10)) { $0.has("STOPPING=1") }
        XCTAssertNotNil(stopping, "the stop is announced even when the pings stopped")
    }

    func testTheDefaultHealthCheckAsksAnEventLoop() async {
        let healthy = await SystemdNotifyService.eventLoopAnswers()
        XCTAssertTrue(healthy)
    }
}
