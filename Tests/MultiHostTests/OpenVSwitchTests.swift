import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import XCTest

/// The operators' ovs-gre layout built by real agents: each host has its own userspace-datapath Open vSwitch (no
/// kernel module needed) with its underlay on `br-phy`; the agent adds an OVS bridge with one GRE port per peer,
/// attached to the Linux bridge, and follows hosts joining.
final class OpenVSwitchTests: LabTestCase {
    func testAgentsBuildOneGREPortPerPeerAndContainersPingAcrossIt() async throws {
        if let reason = LabOpenVSwitch.unavailableReason() {
            if LabRequirement.isRequired {
                return XCTFail("NETLEASE_REQUIRE_NETNS=1 but \(reason); install openvswitch-switch")
            }
            throw XCTSkip(reason)
        }
        try await cluster.startCoordinator(tunnel: .ovsGre)
        var switches: [Int: LabOpenVSwitch] = [:]
        func startHost(_ host: Int) async throws {
            try await lab.addHost(host)
            let ovs = try await LabOpenVSwitch.start(in: lab.hostNamespace(host), lab: lab)
            try ovs.moveUnderlay(
                nic: "underlay0",
                cidr: "\(lab.underlayAddress(host: host))/24",
                peer: (lab.underlayNamespace, lab.underlayPeerLink(host: host))
            )
            switches[host] = ovs
            try await cluster.startAgent(host, createHost: false, wrapper: ovs.environmentWords)
        }
        let ovsBridge = "nlo-6caf69b4"  // the OVS bridge of Linux bridge nl-demo, as `ovs-vsctl show` lists it
        func grePorts(_ host: Int) throws -> Set<String> {
            Set(
                try switches[host]!.vsctl(["list-ports", ovsBridge]).split(separator: "\n").map(String.init)
                    .filter { $0.hasPrefix("gre-") }
            )
        }

        for host in 1...2 { try await startHost(host) }
        XCTAssertEqual(try grePorts(1), ["gre-host2"])
        XCTAssertEqual(try grePorts(2), ["gre-host1"])
        let show = try switches[1]!.vsctl(["show"])
        XCTAssertTrue(show.contains("Port gre-host2"), show)
        XCTAssertTrue(show.contains("remote_ip=\"\(lab.underlayAddress(host: 2))\""), show)
        XCTAssertTrue(show.contains("type: gre"), show)
        XCTAssertEqual(
            try switches[1]!.vsctl(["get", "bridge", ovsBridge, "datapath_type"])
                .trimmingCharacters(in: .whitespacesAndNewlines),
            "netdev"
        )

        let first = try await cluster.attachContainer(host: 1, 1)
        let second = try await cluster.attachContainer(host: 2, 1)
        // The userspace datapath resolves the tunnel next hop itself; the first packets may go before it has.
        let reached = await lab.ping(from: cluster.containerNamespace(host: 1, 1), to: second, within: .seconds(20))
        XCTAssertTrue(reached, "no GRE data flowed between \(first) and \(second)")
        print("ovs-gre: containers \(first) and \(second) on two hosts reach each other through OVS GRE ports")

        // A host that joins later: every existing switch gains a port towards it.
        try await startHost(3)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, try grePorts(1) != ["gre-host2", "gre-host3"] {
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertEqual(try grePorts(1), ["gre-host2", "gre-host3"])
        XCTAssertEqual(try grePorts(3), ["gre-host1", "gre-host2"])
    }
}
