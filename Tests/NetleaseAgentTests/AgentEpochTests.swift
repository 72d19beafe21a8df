import Foundation
import NetleaseCore
import NetleaseTesting
import XCTest

/// The agent states the epoch it recorded at its last join when it joins again, so even a coordinator whose store
/// is behind (restored from an older backup: here, a fresh one) gives it a higher epoch than any it had.
final class AgentEpochTests: AgentTestCase {
    func testTheAgentJoinsAboveTheEpochItRecorded() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-agent-\(UUID().uuidString.prefix(8))")
        let state = directory.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let mark = #"{"id":"a-store-before-the-restore","generation":120,"epoch":41}"#
        try Data(mark.utf8).write(to: state.appendingPathComponent("coordinator-store.json"))

        let harness = try AgentHarness(coordinator: coordinator, directory: directory)
        harnesses.append(harness)
        harness.start()
        _ = try await harness.waitUntilReady()

        let hosts = try await coordinator.connect { try await $0.hosts() }
        let epoch = try XCTUnwrap(hosts.first { $0.name == "h1" }?.epoch)
        XCTAssertGreaterThan(epoch, 41, "the agent got an epoch it had before")
        let recorded = try Data(contentsOf: state.appendingPathComponent("coordinator-store.json"))
        let fields = try XCTUnwrap(try JSONSerialization.jsonObject(with: recorded) as? [String: Any])
        XCTAssertEqual((fields["epoch"] as? NSNumber)?.int64Value, epoch, "the new epoch was not recorded")
    }
}
