import NetleaseCore
import NetleaseLab
import XCTest

@testable import HostNetwork

/// The `ovs-gre` layout on the real kernel with a private, userspace-datapath Open vSwitch inside the namespace
/// (`LabOpenVSwitch`: no system OVS is needed or touched, and no kernel module).
final class RootOpenVSwitchTests: NamespaceTestCase {
    func testOVSBridgeWithOneGREPortPerPeerFollowsThePeers() async throws {
        let h1 = try await lab.addNamespace(role: "h1")
        let h2 = try await lab.addNamespace(role: "h2")
        try await lab.connect(h1, "10.77.0.1/24", h2, "10.77.0.2/24")
        let ovs = try await startOpenVSwitch(in: h1)
        let network = LinuxHostNetwork(runner: lab.commandRunner(in: h1, environment: ovs.environment))
        var config = config(
            underlay: "10.77.0.1",
            bridgeAddress: "172.30.0.1",
            peers: ["h1": "10.77.0.1", "h2": "10.77.0.2", "h3": "10.77.0.3"]
        )
        // With the underlay address on a plain NIC, verify says why GRE cannot work.
        let plain = try await network.verify(config)
        XCTAssertTrue(
            plain.contains { $0.check == .underlay && $0.detail.contains("not on an OVS bridge") },
            "\(plain)"
        )
        try ovs.moveUnderlay(nic: "u0", cidr: "10.77.0.1/24")
        // What operators see for Linux bridge nlt0: the OVS bridge and both ends of the veth between the two.
        let switchName = "nlo-347a9bba"
        let switchSide = "nlvo-347a9bba"
        let bridgeSide = "nlvl-347a9bba"

        let report = try await network.ensureNetwork(config)
        XCTAssertEqual(report.mtu, 1462)
        XCTAssertEqual(try ovs.vsctl(["get", "bridge", switchName, "datapath_type"]).trimmed, "netdev")
        XCTAssertEqual(Set(try ovs.vsctl(["list-ports", switchName]).lines), [switchSide, "gre-h2", "gre-h3"])
        XCTAssertEqual(try ovs.vsctl(["get", "interface", "gre-h2", "type"]).trimmed, "gre")
        XCTAssertEqual(try ovs.vsctl(["get", "interface", "gre-h2", "options:remote_ip"]).trimmed, "\"10.77.0.2\"")
        let links = try await lab.links(in: h1)
        XCTAssertEqual(links[bridgeSide]?["master"] as? String, "nlt0")
        XCTAssertTrue((links[bridgeSide]?["flags"] as? [String] ?? []).contains("UP"))
        XCTAssertTrue((links[switchSide]?["flags"] as? [String] ?? []).contains("UP"))

        let again = try await network.ensureNetwork(config)
        XCTAssertEqual(again.changes, [])
        let failures = try await network.verify(config)
        XCTAssertEqual(failures, [])
        XCTAssertTrue(try ovs.vsctl(["list-br"]).lines.contains("br-phy"))

        config.peers["h3"] = nil
        config.peers["h2"] = IPv4Address(10, 77, 0, 22)
        _ = try await network.ensureNetwork(config)
        XCTAssertEqual(Set(try ovs.vsctl(["list-ports", switchName]).lines), [switchSide, "gre-h2"])
        XCTAssertEqual(try ovs.vsctl(["get", "interface", "gre-h2", "options:remote_ip"]).trimmed, "\"10.77.0.22\"")

        try await network.teardown(network: "t")
        XCTAssertFalse(try ovs.vsctl(["list-br"]).lines.contains(switchName))
        let after = try await lab.links(in: h1)
        XCTAssertNil(after["nlt0"])
        XCTAssertNil(after[bridgeSide])
        XCTAssertNil(after[switchSide])
        XCTAssertTrue(try ovs.vsctl(["list-br"]).lines.contains("br-phy"), "the operators' bridge stays")
    }

    private func config(underlay: String, bridgeAddress: String, peers: [String: String]) -> HostNetworkConfig {
        HostNetworkConfig(
            network: "t",
            bridge: "nlt0",
            bridgeAddress: IPv4Address(bridgeAddress)!,
            prefix: 24,
            tunnel: .ovsGre,
            underlay: IPv4Address(underlay)!,
            peers: peers.mapValues { IPv4Address($0)! }
        )
    }

    /// Two hosts, each with its own userspace OVS and the underlay on `br-phy`; netlease builds the rest and
    /// containers on different hosts reach each other through OVS's GRE ports.
    func testContainersReachEachOtherThroughUserspaceGRE() async throws {
        let h1 = try await lab.addNamespace(role: "h1")
        let h2 = try await lab.addNamespace(role: "h2")
        let c1 = try await lab.addNamespace(role: "c1")
        let c2 = try await lab.addNamespace(role: "c2")
        try await lab.connect(h1, "10.77.0.1/24", h2, "10.77.0.2/24")
        var networks: [LinuxHostNetwork] = []
        for (index, namespace) in [h1, h2].enumerated() {
            let ovs = try await startOpenVSwitch(in: namespace)
            try ovs.moveUnderlay(nic: "u0", cidr: "10.77.0.\(index + 1)/24")
            let network = LinuxHostNetwork(runner: lab.commandRunner(in: namespace, environment: ovs.environment))
            let config = config(
                underlay: "10.77.0.\(index + 1)",
                bridgeAddress: "172.30.0.\(index + 1)",
                peers: ["h1": "10.77.0.1", "h2": "10.77.0.2"]
            )
            _ = try await network.ensureNetwork(config)
            let failures = try await network.verify(config)
            XCTAssertEqual(failures, [])
            networks.append(network)
        }
        for (index, container) in [c1, c2].enumerated() {
            _ = try await networks[index].attach(
                ContainerAttachment(
                    network: "t",
                    owner: "ctr-\(index)",
                    namespace: .named(container),
                    address: IPv4Address(172, 30, 0, UInt8(11 + index)),
                    prefix: 24,
                    gateway: IPv4Address(172, 30, 0, UInt8(1 + index)),
                    bridge: "nlt0",
                    naming: .random()
                )
            )
        }
        // The first packets may be lost while OVS resolves the tunnel's next hop; poll with a deadline.
        let reached = await lab.ping(from: c1, to: IPv4Address(172, 30, 0, 12), within: .seconds(20))
        XCTAssertTrue(reached, "no traffic through the OVS GRE ports")
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
    var lines: [String] { split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty } }
}
