import Foundation
import HostNetwork
import NetleaseAgent
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// A container's namespace path outlives the container (`ip netns del web; ip netns add web`, a reused PID): a
/// restarted agent re-plumbs a recorded container only into the namespace it plumbed before.
final class ReplacedNamespaceRecoveryTests: AgentTestCase {
    private func makeAgent(directory: URL) throws -> AgentHarness {
        let harness = try AgentHarness(coordinator: coordinator, directory: directory)
        harnesses.append(harness)
        return harness
    }

    private func records(_ directory: URL) throws -> [LocalLease] {
        try JSONDecoder().decode(
            [LocalLease].self,
            from: Data(contentsOf: directory.appendingPathComponent("state/leases.json"))
        )
    }

    private func doctor(_ harness: AgentHarness) async throws -> [String: DoctorCheck] {
        let checks = try await harness.local { try await $0.send(LocalRequest.doctor) }.records
            .map(DoctorCheck.init(fields:))
        return Dictionary(uniqueKeysWithValues: checks.map { ($0.name, $0) })
    }

    /// An agent that attached "web" into netns ctr-web; returns its state directory, the agent stopped.
    private func attachedWeb() async throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-agent-\(UUID().uuidString.prefix(8))")
        let first = try makeAgent(directory: directory)
        first.start()
        _ = try await first.waitUntilReady()
        _ = try await first.local {
            try await $0.send(LocalRequest.attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
        }
        await first.stop()
        return directory
    }

    func testTheRecordNamesThePlumbedNamespaceAndARestartRepairsOnlyThatOne() async throws {
        let directory = try await attachedWeb()
        XCTAssertEqual(try records(directory).first?.netnsIdentity, RecordingHostNetwork.defaultIdentity)

        // Same namespace, its veth gone: plumbed again, into that namespace only.
        let same = try makeAgent(directory: directory)
        same.network.recorder.setProblems(["no veth pair leads to eth0 in netns ctr-web"], owner: "web")
        same.start()
        _ = try await same.waitUntilReady()
        let repaired = same.network.recorder.calls.compactMap { call -> ContainerAttachment? in
            if case .attach(let attachment) = call { return attachment }
            return nil
        }
        XCTAssertEqual(repaired.map(\.namespaceIdentity), [RecordingHostNetwork.defaultIdentity])
        let ports = try await same.network.recorder.containerPorts(bridge: "nl-prod")
        XCTAssertEqual(ports.count, 1, "the container was not re-plumbed")
        await same.stop()

        // Another namespace under the same name: nothing is plumbed into it, and doctor says the container is gone.
        let replaced = try makeAgent(directory: directory)
        replaced.network.recorder.setIdentity(
            NamespaceIdentity(boot: "recording", cookie: 2, inode: RecordingHostNetwork.defaultIdentity.inode),
            of: .named("ctr-web")
        )
        // What the real host network would find looking by path alone: no veth pair in the new namespace.
        replaced.network.recorder.setProblems(["no veth pair leads to eth0 in netns ctr-web"], owner: "web")
        replaced.start()
        _ = try await replaced.waitUntilReady()
        let plumbed = try await replaced.network.recorder.containerPorts(bridge: "nl-prod")
        XCTAssertEqual(plumbed, [], "the namespace that took the path was plumbed")
        for call in replaced.network.recorder.calls {
            if case .attach(let attachment) = call {
                XCTAssertEqual(attachment.namespaceIdentity, RecordingHostNetwork.defaultIdentity, "\(attachment)")
            }
        }
        let containers = try await doctor(replaced)["containers"]
        XCTAssertEqual(containers?.ok, false)
        XCTAssertTrue(containers?.detail.contains("the container is gone") ?? false, containers?.detail ?? "")
        XCTAssertEqual(try records(directory).map(\.owner), ["web"], "the runtime detaches; the record stays")
    }

    /// Records of older releases name no namespace identity: such a container is never re-plumbed on its own, and
    /// doctor says why. Its file still loads.
    func testARecordWithoutIdentityIsNeverReplumbed() async throws {
        let directory = try await attachedWeb()
        let file = directory.appendingPathComponent("state/leases.json")
        var list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [[String: Any]])
        XCTAssertNotNil(list.first?["netnsIdentity"])
        list = list.map { $0.filter { $0.key != "netnsIdentity" } }
        try JSONSerialization.data(withJSONObject: list).write(to: file)

        let restarted = try makeAgent(directory: directory)
        restarted.network.recorder.setProblems(["no veth pair leads to eth0 in netns ctr-web"], owner: "web")
        restarted.start()
        _ = try await restarted.waitUntilReady()
        let attaches = restarted.network.recorder.calls.filter {
            if case .attach = $0 { return true }
            return false
        }
        XCTAssertEqual(attaches, [])
        let checks = try await doctor(restarted)
        let detail = checks.values.map(\.detail).joined(separator: "\n")
        XCTAssertTrue(detail.contains("recorded without the identity of its namespace"), detail)
    }
}
