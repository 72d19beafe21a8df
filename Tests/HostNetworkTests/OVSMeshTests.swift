import NetleaseCore
import NetleaseTesting
import XCTest

@testable import HostNetwork

/// `LinuxHostNetwork` with the operators' Open vSwitch layout, against a scripted host.
final class OVSMeshTests: XCTestCase {
    static let observe = ["ip", "-d", "-j", "addr", "show"]
    static let vsctl = ["ovs-vsctl", "--timeout=10"]
    // The names for Linux bridge nl0 as operators see them in `ovs-vsctl show` and `ip link`. Literals: they must
    // not change between releases, or a new agent would no longer find what an old one created.
    static let ovs = "nlo-21580c19"
    static let near = "nlvl-21580c19"
    static let far = "nlvo-21580c19"
    static let findGRE = vsctl + ["--format=json", "--columns=name,options", "find", "interface", "type=gre"]

    private var runner: RecordingCommandRunner!
    private var network: LinuxHostNetwork!

    override func setUp() {
        runner = RecordingCommandRunner()
        network = LinuxHostNetwork(runner: runner)
    }

    static func config(peers: [String: String] = ["b": "10.0.0.2", "c": "10.0.0.3"]) -> HostNetworkConfig {
        HostNetworkConfig(
            network: "red",
            bridge: "nl0",
            bridgeAddress: IPv4Address(172, 30, 0, 1),
            prefix: 16,
            tunnel: .ovsGre,
            underlay: IPv4Address(10, 0, 0, 1),
            peers: peers.mapValues { IPv4Address($0)! }
        )
    }

    static func addPort(_ peer: String, _ remote: String) -> [String] {
        vsctl + [
            "--may-exist", "add-port", ovs, "gre-\(peer)", "--", "set", "interface", "gre-\(peer)", "type=gre",
            "options:remote_ip=\(remote)",
        ]
    }

    func testFreshHostGetsSwitchLinkAndOneGREPortPerPeer() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay()])))
        runner.on(Self.vsctl + ["list-br"], reply: .output(""))
        _ = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe,
                Self.vsctl + ["list-br"],
                ["ip", "link", "add", "nl0", "type", "bridge"],
                ["ip", "link", "set", "dev", "nl0", "mtu", "1462"],
                ["ip", "addr", "add", "172.30.0.1/16", "dev", "nl0"],
                ["ip", "link", "set", "dev", "nl0", "up"],
                Self.vsctl + [
                    "--may-exist", "add-br", Self.ovs, "--", "set", "bridge", Self.ovs, "datapath_type=netdev",
                ],
                [
                    "ip", "link", "add", Self.near, "mtu", "1462", "type", "veth", "peer", "name", Self.far, "mtu",
                    "1462",
                ],
                ["ip", "link", "set", "dev", Self.near, "master", "nl0"],
                ["ip", "link", "set", "dev", Self.near, "up"],
                ["ip", "link", "set", "dev", Self.far, "up"],
                Self.vsctl + ["--may-exist", "add-port", Self.ovs, Self.far],
                Self.addPort("b", "10.0.0.2"),
                Self.addPort("c", "10.0.0.3"),
            ]
        )
        let created = await network.createdResources(network: "red")
        XCTAssertEqual(
            created,
            [
                .link("nl0"), .ovsBridge(Self.ovs), .link(Self.near), .ovsPort(bridge: Self.ovs, port: Self.far),
                .ovsPort(bridge: Self.ovs, port: "gre-b"), .ovsPort(bridge: Self.ovs, port: "gre-c"),
            ]
        )

        // Teardown: the OVS bridge (its ports go with it), then the veth pair, then the bridge.
        scriptExisting(ports: ["b": "10.0.0.2", "c": "10.0.0.3"])
        runner.clearCommands()
        try await network.teardown(network: "red")
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe,
                Self.vsctl + ["--if-exists", "del-br", Self.ovs],
                ["ip", "link", "del", Self.near],
                ["ip", "link", "del", "nl0"],
            ]
        )
    }

    private func scriptExisting(ports: [String: String], datapath: String = "netdev", linkUp: Bool = true) {
        let links: [FakeLink] = [
            FakeLink("br-phy", index: 3, kind: "tun", addresses: ["10.0.0.1/24"]), .bridge(mtu: 1462),
            FakeLink(Self.near, index: 30, kind: "veth", up: linkUp, mtu: 1462, master: "nl0", peerName: Self.far),
            FakeLink(Self.far, index: 31, kind: "veth", up: linkUp, mtu: 1462, peerName: Self.near),
        ]
        runner.on(Self.observe, reply: .output(FakeLink.render(links)))
        runner.on(Self.vsctl + ["list-br"], reply: .output("br-phy\n\(Self.ovs)\n"))
        runner.on(Self.vsctl + ["get", "bridge", Self.ovs, "datapath_type"], reply: .output("\(datapath)\n"))
        let names = ports.keys.sorted().map { "gre-\($0)" } + [Self.far]
        runner.on(Self.vsctl + ["list-ports", Self.ovs], reply: .output(names.joined(separator: "\n") + "\n"))
        let rows = ports.keys.sorted().map { #"["gre-\#($0)",["map",[["remote_ip","\#(ports[$0]!)"]]]]"# }
        // A GRE port of another bridge must not count as ours.
        let foreign = #"["gre-x",["map",[["remote_ip","10.9.9.9"]]]]"#
        let data = (rows + [foreign]).joined(separator: ",")
        runner.on(Self.findGRE, reply: .output(#"{"data":[\#(data)],"headings":["name","options"]}"#))
    }

    private var observations: [[String]] {
        [
            Self.observe, Self.vsctl + ["list-br"], Self.vsctl + ["get", "bridge", Self.ovs, "datapath_type"],
            Self.vsctl + ["list-ports", Self.ovs], Self.findGRE,
        ]
    }

    func testMatchingHostSeesNoChangingCommand() async throws {
        scriptExisting(ports: ["b": "10.0.0.2", "c": "10.0.0.3"])
        let report = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(report.changes, [])
        XCTAssertEqual(runner.commands, observations)
        let failures = try await network.verify(Self.config())
        XCTAssertEqual(failures, [])
    }

    func testPeerJoinsMovesAndLeaves() async throws {
        scriptExisting(ports: ["b": "10.0.0.2", "c": "10.0.0.3"])
        _ = try await network.ensureNetwork(Self.config(peers: ["b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"]))
        XCTAssertEqual(Array(runner.commands.dropFirst(5)), [Self.addPort("d", "10.0.0.4")])

        runner.clearCommands()
        _ = try await network.ensureNetwork(Self.config(peers: ["b": "10.0.0.2", "c": "10.0.0.9"]))
        XCTAssertEqual(
            Array(runner.commands.dropFirst(5)),
            [
                Self.vsctl + ["--if-exists", "del-port", Self.ovs, "gre-c"], Self.addPort("c", "10.0.0.9"),
            ]
        )

        runner.clearCommands()
        _ = try await network.ensureNetwork(Self.config(peers: ["b": "10.0.0.2"]))
        XCTAssertEqual(
            Array(runner.commands.dropFirst(5)),
            [Self.vsctl + ["--if-exists", "del-port", Self.ovs, "gre-c"]]
        )
    }

    func testKernelDatapathBridgeIsSwitchedToUserspaceAndLinkBroughtUp() async throws {
        scriptExisting(ports: ["b": "10.0.0.2", "c": "10.0.0.3"], datapath: "\"\"", linkUp: false)
        _ = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(
            Array(runner.commands.dropFirst(5)),
            [
                Self.vsctl + ["set", "bridge", Self.ovs, "datapath_type=netdev"],
                ["ip", "link", "set", "dev", Self.near, "up"],
                ["ip", "link", "set", "dev", Self.far, "up"],
            ]
        )
    }

    func testVerifyReportsAnUnderlayOutsideOVS() async throws {
        scriptExisting(ports: ["b": "10.0.0.2", "c": "10.0.0.3"])
        runner.on(
            Self.observe,
            reply: .output(
                FakeLink.render([
                    .underlay(), .bridge(mtu: 1462),
                    FakeLink(Self.near, index: 30, kind: "veth", mtu: 1462, master: "nl0", peerName: Self.far),
                    FakeLink(Self.far, index: 31, kind: "veth", mtu: 1462, peerName: Self.near),
                ])
            )
        )
        let failures = try await network.verify(Self.config())
        XCTAssertEqual(failures.map(\.check), [.underlay])
        XCTAssertTrue(failures[0].detail.contains("eth0"), failures[0].detail)
        XCTAssertTrue(failures[0].detail.contains("OVS bridge"), failures[0].detail)
        let report = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(report.changes, [], "netlease reports the underlay but never moves it")
    }

    func testOVSNotRunningIsNamed() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay()])))
        runner.on(
            Self.vsctl + ["list-br"],
            reply: .failure(
                status: 1,
                stderr: "ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed "
                    + "(No such file or directory)"
            )
        )
        do {
            _ = try await network.ensureNetwork(Self.config())
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .commandFailed)
            XCTAssertTrue(error.message.hasPrefix("Open vSwitch is not running"), error.message)
            XCTAssertEqual(error.status, 1)
        }
        XCTAssertEqual(runner.commands.count, 2, "nothing is changed when OVS cannot be observed")
    }

    func testLongPeerNamesGetHashedPortNames() {
        XCTAssertEqual(InterfaceNames.ovsGREPort(peer: "host2"), "gre-host2")
        let long = InterfaceNames.ovsGREPort(peer: "rack7-compute-node-0042")
        XCTAssertEqual(long, "gre-326f932d57e")
        XCTAssertEqual(long.utf8.count, 15)
        XCTAssertTrue(Names.isValidInterface(long))
    }

    func testBridgeAndLinkNamesAreThePinnedOnes() {
        XCTAssertEqual(InterfaceNames.ovsBridge(bridge: "nl0"), Self.ovs)
        XCTAssertEqual(InterfaceNames.ovsLinkBridgeSide(bridge: "nl0"), Self.near)
        XCTAssertEqual(InterfaceNames.ovsLinkSwitchSide(bridge: "nl0"), Self.far)
        XCTAssertEqual(Self.config().ovsBridge, Self.ovs)
    }
}
