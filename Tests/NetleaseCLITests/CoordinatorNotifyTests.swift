import Foundation
import NetleaseTesting
import XCTest

/// The coordinator executable under a stand-in for systemd (`Type=notify`, `WatchdogSec=`): READY=1 only once it
/// accepts connections with its store open, watchdog pings at the interval, STOPPING=1 on SIGTERM.
final class CoordinatorNotifyTests: XCTestCase {
    func testReadyWatchdogAndStopping() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = try NotifySocketRecorder(path: directory + "/notify")
        defer { socket.close() }
        let daemon = try ChildDaemon(
            ["coordinator", "--listen", "127.0.0.1:0", "--data", directory + "/data", "--log-level", "warning"],
            environment: ["NOTIFY_SOCKET": socket.environmentValue, "WATCHDOG_USEC": "400000"],
            stderrFile: directory + "/stderr"
        )

        let ready = await socket.first(within: .seconds(60)) { $0.has("READY=1") }
        let status = try XCTUnwrap(ready?.value(of: "STATUS"), daemon.stderrText)
        XCTAssertTrue(status.hasPrefix("serving on 127.0.0.1:"), status)
        // At READY the coordinator accepts connections and answers from its store.
        let port = try XCTUnwrap(Int(status.split(separator: ":").last ?? ""))
        let replies = try RawLineClient.exchange(port: port, ["PING"])
        XCTAssertEqual(replies, ["NETLEASE version=1 auth=required", "OK pong=1"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/data/netlease.db"))
        let listening = await daemon.line(containing: "listening on 127.0.0.1:\(port)")
        XCTAssertNotNil(listening)
        // Milestones before READY, READY once.
        let messages = socket.messages
        let readyIndex = try XCTUnwrap(messages.firstIndex { $0.has("READY=1") })
        let before = messages[..<readyIndex].compactMap { $0.value(of: "STATUS") }
        XCTAssertTrue(before.contains { $0.hasPrefix("opening the lease store") }, "\(before)")
        XCTAssertEqual(messages.filter { $0.has("READY=1") }.count, 1)

        // WATCHDOG_USEC=400000: a ping every 200 ms.
        let third = await socket.first(within: .seconds(30)) { _ in
            socket.messages.filter { $0.has("WATCHDOG=1") }.count >= 3
        }
        XCTAssertNotNil(third)
        let pings = socket.messages.filter { $0.has("WATCHDOG=1") }.map(\.arrived)
        XCTAssertGreaterThanOrEqual(pings[2] - pings[0], .milliseconds(350))

        let exit = await daemon.terminate()
        XCTAssertEqual(exit, 0, daemon.stderrText)
        let stopping = await socket.first(within: .seconds(10)) { $0.has("STOPPING=1") }
        XCTAssertNotNil(stopping)
    }

    func testWithoutNotifySocketNothingIsSent() async throws {
        XCTAssertNil(BuiltExecutable.cleanEnvironment()["NOTIFY_SOCKET"])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let daemon = try ChildDaemon(
            ["coordinator", "--listen", "127.0.0.1:0", "--data", directory, "--log-level", "warning"],
            stderrFile: directory + ".stderr"
        )
        _ = try await daemon.listeningPort()
        let exit = await daemon.terminate()
        XCTAssertEqual(exit, 0, daemon.stderrText)
    }
}
