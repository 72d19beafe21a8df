import Foundation
import HostNetwork
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

/// The agent under a stand-in for systemd (`Type=notify`): READY=1 at the moment of readiness — every network
/// verified and the local API open — never before; status lines at each step; watchdog pings; STOPPING=1.
final class AgentNotifyTests: XCTestCase {
    var coordinator: CoordinatorHarness!
    var harness: AgentHarness?
    var socket: NotifySocketRecorder?
    var directory: URL!

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("agent-notify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let coordinator = try await withDeadline("the coordinator's start") { try await CoordinatorHarness.start() }
        self.coordinator = coordinator
        try await withDeadline("creating the network") {
            try await coordinator.connect { c in
                _ = try await c.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
            }
        }
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness?.removeFiles()
        socket?.close()
        if let coordinator { try await withDeadline("the coordinator's stop") { await coordinator.stop() } }
        try? FileManager.default.removeItem(at: directory)
    }

    func testReadyOnlyOnceTheNetworkIsVerifiedAndTheSocketIsOpen() async throws {
        let socket = try NotifySocketRecorder(path: directory.appendingPathComponent("notify").path)
        self.socket = socket
        let notifier = try XCTUnwrap(
            SystemdNotifier(
                environment: ["NOTIFY_SOCKET": socket.environmentValue, "WATCHDOG_USEC": "200000"])
        )
        let harness = try AgentHarness(
            coordinator: coordinator,
            directory: directory.appendingPathComponent("agent"),
            notifier: notifier
        )
        self.harness = harness
        harness.network.recorder.setVerifyFailures([VerifyFailure(check: .bridgeUp, detail: "bridge is down")])
        harness.start()
        for attempt in 1...3 {
            try await harness.network.nextCall("verification \(attempt)") { call -> Void? in
                if case .verify = call { return () }
                return nil
            }
        }
        // Joined, building, failing verification, retrying — and not ready.
        let failing = await socket.first(within: defaultTestDeadline) {
            $0.value(of: "STATUS")?.hasPrefix("no coordinator session (") == true
        }
        XCTAssertNotNil(failing)
        let statuses = socket.messages.compactMap { $0.value(of: "STATUS") }
        XCTAssertTrue(statuses.contains { $0.hasPrefix("connecting to coordinator 127.0.0.1:") }, "\(statuses)")
        XCTAssertTrue(statuses.contains { $0.contains("as epoch") && $0.contains("building") }, "\(statuses)")
        XCTAssertFalse(socket.messages.contains { $0.has("READY=1") }, "READY before the network verified")
        // Pings flow meanwhile: the process is alive, only not ready.
        XCTAssertTrue(socket.messages.contains { $0.has("WATCHDOG=1") })

        harness.network.recorder.setVerifyFailures([])
        let ready = await socket.first(within: defaultTestDeadline) { $0.has("READY=1") }
        XCTAssertEqual(ready?.value(of: "STATUS"), "serving prod on \(harness.socketPath)")
        // At READY the local API answers.
        XCTAssertTrue(FileManager.default.fileExists(atPath: harness.socketPath))
        _ = try await harness.local { try await $0.send(LocalRequest.ping) }
        _ = try await harness.waitUntilReady()
        XCTAssertEqual(socket.messages.filter { $0.has("READY=1") }.count, 1)

        await harness.stop()
        let stopping = await socket.first(within: defaultTestDeadline) { $0.has("STOPPING=1") }
        XCTAssertNotNil(stopping)
    }
}
