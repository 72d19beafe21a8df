import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import NetleaseTesting
import XCTest

/// The agent heals its host network on its own: drift an operator (or another program) causes on a running host —
/// the tunnel taken off the bridge, a peer's forwarding entry gone, the bridge's MTU changed, the bridge deleted —
/// is repaired by the next resync, each repair logged with its kind and counted under it on the agent's own
/// `/metrics`. Real agents, real bridges and VXLAN in namespaces; every wait is for the agent's own log line, with a
/// deadline.
final class ResyncTests: LabTestCase {
    /// The agent's resync period here; a repair must show within one period (plus the ±20 % jitter and the commands).
    static let period = 2
    /// Where host 1's agent serves its metrics, inside host 1's namespace (scraped with curl run there).
    static let metrics = "127.0.0.1:9464"
    static let curl = "/usr/bin/curl"

    func testBridgeTunnelPortPeerEntryAndMTUDriftAreEachRepairedWithinOneResyncAndCountedOnce() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.curl) else {
            let why = "\(Self.curl) is missing (Debian package curl): it scrapes the agent inside its namespace"
            if LabRequirement.isRequired {
                XCTFail("NETLEASE_REQUIRE_NETNS=1 but \(why)")
                throw NetleaseError(.unavailable, why)
            }
            throw XCTSkip(why)
        }
        try await cluster.startCoordinator()
        let agent = try await cluster.startAgent(
            1,
            extraArguments: ["--resync", String(Self.period), "--metrics", Self.metrics]
        )
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
        let before = try await repairs(in: host)
        XCTAssertEqual(before, [:], "nothing repaired before anything drifted")
        for (kind, argv) in breaks {
            try await lab.run(host, argv)
            // One period plus its jitter, with room for the commands on a busy machine.
            let line = try await awaitLog(of: agent, "repaired host network drift", "kind=\(kind)")
            XCTAssertTrue(line.contains("network=\(cluster.network)"), line)
            // Counted before it is logged: the counter of this kind is up by one now.
            let counted = try await repairs(in: host)
            XCTAssertEqual(counted[kind], 1, "\(kind) after its repair: \(counted)")
        }
        // Every repair the agent logged is counted once under its network and kind, and nothing else is: the
        // deleted bridge fails more checks than its presence (its MTU, the tunnel's port), each logged and counted.
        let logged = agent.log.split(separator: "\n").filter { $0.contains("repaired host network drift") }
        var expected: [String: Double] = [:]
        for line in logged {
            XCTAssertTrue(line.contains("network=\(cluster.network)"), String(line))
            let fields = line.split(separator: " ")
            guard let kind = VerifyCheck.allCases.first(where: { fields.contains("kind=\($0.rawValue)") }) else {
                XCTFail("a repair line without a kind: \(line)")
                continue
            }
            expected[kind.rawValue, default: 0] += 1
        }
        let counted = try await repairs(in: host)
        XCTAssertEqual(counted, expected)
        // Whole again: the bridge carries its address and the tunnel, the peer's entry is back.
        let links = try await lab.run(host, ["ip", "-o", "link", "show", "master", bridge]).stdout
        XCTAssertTrue(links.contains(tunnel), links)
        try await awaitCommand(in: host, ["bridge", "fdb", "show", "dev", tunnel], printing: "dst \(peer)")
        XCTAssertFalse(agent.log.contains("repair did not take"), agent.log)
    }

    /// `netlease_agent_repairs_total` of the lab's network by kind, scraped from the agent's `/metrics` in `host`;
    /// a series of another network fails the test.
    private func repairs(in host: String) async throws -> [String: Double] {
        let scrape = try await lab.run(host, [Self.curl, "-sSf", "--max-time", "10", "http://\(Self.metrics)/metrics"])
        var counts: [String: Double] = [:]
        for sample in try MetricsText(scrape.stdout).samples where sample.name == "netlease_agent_repairs_total" {
            XCTAssertEqual(sample.labels["network"], cluster.network, "\(sample)")
            XCTAssertEqual(Set(sample.labels.keys), ["network", "kind"], "\(sample)")
            counts[sample.labels["kind"] ?? "", default: 0] += sample.value
        }
        return counts
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
