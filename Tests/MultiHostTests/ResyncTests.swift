import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import XCTest

/// The agent heals its host network on its own: drift an operator (or another program) causes on a running host —
/// the tunnel taken off the bridge, a peer's forwarding entry gone, the bridge's MTU changed, the bridge deleted —
/// is repaired by the next resync, each repair logged with its kind. Real agents, real bridges and VXLAN in
/// namespaces; every wait is for the agent's own log line, with a deadline.
final class ResyncTests: LabTestCase {
    /// The agent's resync period here; a repair must show within one period (plus the ±20 % jitter and the commands).
    static let period = 2

    func testBridgeTunnelPortPeerEntryAndMTUDriftAreEachRepairedWithinOneResync() async throws {
        try await cluster.startCoordinator()
        let agent = try await cluster.startAgent(1, extraArguments: ["--resync", String(Self.period)])
        try await cluster.startAgent(2)
        let host = lab.hostNamespace(1)
        let bridge = "nl-\(cluster.network)"
        let network = try await cluster.admin(["network", "show", cluster.network, "--json"])
        let vni = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(network.utf8)) as? [String: Any])?["vni"] as? Int
        )
        let tunnel = InterfaceNames.vxlan(vni: UInt32(vni))
        let peer = lab.underlayAddress(host: 2).description
        // host1's forwarding entry towards host2 exists once host1 followed host2's join.
        try await awaitCommand(in: host, ["bridge", "fdb", "show", "dev", tunnel], printing: "dst \(peer)")

        let breaks: [(kind: String, argv: [String])] = [
            ("tunnel-master", ["ip", "link", "set", tunnel, "nomaster"]),
            ("tunnel-fdb", ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", tunnel, "dst", peer]),
            ("bridge-mtu", ["ip", "link", "set", bridge, "mtu", "1280"]),
            ("bridge-present", ["ip", "link", "del", bridge]),
        ]
        for (kind, argv) in breaks {
            try await lab.run(host, argv)
            // One period plus its jitter, with room for the commands on a busy machine.
            let line = try await awaitLog(of: agent, "repaired host network drift", "kind=\(kind)")
            XCTAssertTrue(line.contains("network=\(cluster.network)"), line)
        }
        // Whole again: the bridge carries its address and the tunnel, the peer's entry is back.
        let links = try await lab.run(host, ["ip", "-o", "link", "show", "master", bridge]).stdout
        XCTAssertTrue(links.contains(tunnel), links)
        try await awaitCommand(in: host, ["bridge", "fdb", "show", "dev", tunnel], printing: "dst \(peer)")
        XCTAssertFalse(agent.log.contains("repair did not take"), agent.log)
    }

    /// The first line of the agent's log (its stderr) holding every one of `texts`; fails the test when none does
    /// after two resync periods and 10 s.
    private func awaitLog(of agent: LabProcess, _ texts: String...) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(Self.period * 2 + 10)
        while true {
            let log = agent.log
            if let line = log.split(separator: "\n").first(where: { line in texts.allSatisfy { line.contains($0) } }) {
                return String(line)
            }
            guard ContinuousClock.now < deadline else {
                XCTFail("no log line with \(texts) in time:\n\(log)")
                throw NetleaseError(.unavailable, "no log line with \(texts)")
            }
            try await Task.sleep(for: .milliseconds(100))  // polling the log file, bounded by the deadline
        }
    }

    /// Runs `argv` in `namespace` until its output contains `text`; fails the test after 20 s.
    private func awaitCommand(in namespace: String, _ argv: [String], printing text: String) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let output = (try? await lab.run(namespace, argv).stdout) ?? ""
            if output.contains(text) { return }
            guard ContinuousClock.now < deadline else {
                XCTFail("\(argv.joined(separator: " ")) never printed '\(text)':\n\(output)")
                return
            }
            try await Task.sleep(for: .milliseconds(200))  // polling a kernel table, bounded by the deadline
        }
    }
}
