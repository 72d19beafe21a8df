import NetleaseCore
import NetleaseTesting
import XCTest

@testable import HostNetwork

/// `LinuxHostNetwork` with a VXLAN mesh, against a scripted host: exact commands.
final class VXLANMeshTests: XCTestCase {
    static let observe = ["ip", "-d", "-j", "addr", "show"]
    static let fdbShow = ["bridge", "-j", "fdb", "show", "dev", "nlvx-42"]

    private var runner: RecordingCommandRunner!
    private var network: LinuxHostNetwork!

    override func setUp() {
        runner = RecordingCommandRunner()
        network = LinuxHostNetwork(runner: runner)
    }

    static func config(
        peers: [String: String] = ["b": "10.0.0.2", "c": "10.0.0.3"],
        mtu: Int = 0,
        underlayMTU: Int? = nil
    ) -> HostNetworkConfig {
        var all = peers.mapValues { IPv4Address($0)! }
        all["a"] = IPv4Address(10, 0, 0, 1)  // this host; never a tunnel endpoint
        return HostNetworkConfig(
            network: "blue",
            bridge: "nl0",
            bridgeAddress: IPv4Address(172, 30, 0, 1),
            prefix: 16,
            tunnel: .vxlan,
            vni: 42,
            mtu: mtu,
            underlay: IPv4Address(10, 0, 0, 1),
            underlayMTU: underlayMTU,
            peers: all
        )
    }

    private func script(_ links: [FakeLink], fdb: [String]? = nil) {
        runner.on(Self.observe, reply: .output(FakeLink.render(links)))
        if let fdb { runner.on(Self.fdbShow, reply: .output(FakeLink.fdb(fdb))) }
    }

    private var matchingHost: [FakeLink] { [.underlay(), .bridge(), .vxlan()] }

    func testFreshHostGetsBridgeDeviceAndOneEntryPerPeer() async throws {
        script([.underlay()])
        let report = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe,
                ["ip", "link", "add", "nl0", "type", "bridge"],
                ["ip", "link", "set", "dev", "nl0", "mtu", "1450"],
                ["ip", "addr", "add", "172.30.0.1/16", "dev", "nl0"],
                ["ip", "link", "set", "dev", "nl0", "up"],
                [
                    "ip", "link", "add", "nlvx-42", "mtu", "1450", "type", "vxlan", "id", "42", "dstport", "4789",
                    "local", "10.0.0.1", "nolearning",
                ],
                ["ip", "link", "set", "dev", "nlvx-42", "master", "nl0"],
                ["ip", "link", "set", "dev", "nlvx-42", "up"],
                ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.2"],
                ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.3"],
            ]
        )
        XCTAssertEqual(report.mtu, 1450)
        XCTAssertEqual(report.changes.count, 9)
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(
            created,
            [
                .link("nl0"), .link("nlvx-42"),
                .fdb(device: "nlvx-42", destination: IPv4Address(10, 0, 0, 2)),
                .fdb(device: "nlvx-42", destination: IPv4Address(10, 0, 0, 3)),
            ]
        )
    }

    func testMatchingHostSeesNoChangingCommand() async throws {
        script(matchingHost, fdb: ["10.0.0.2", "10.0.0.3"])
        let report = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(runner.commands, [Self.observe, Self.fdbShow])
        XCTAssertEqual(report.changes, [])
        let failures = try await network.verify(Self.config())
        XCTAssertEqual(failures, [])
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(created, [], "adopted links are not recorded as created")
    }

    func testPeerJoinsAddsOnlyItsEntry() async throws {
        script(matchingHost, fdb: ["10.0.0.2"])
        _ = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe, Self.fdbShow,
                ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.3"],
            ]
        )
    }

    func testPeerChangesUnderlayAddressMovesItsEntry() async throws {
        script(matchingHost, fdb: ["10.0.0.2", "10.0.0.3"])
        _ = try await network.ensureNetwork(Self.config(peers: ["b": "10.0.0.2", "c": "10.0.0.9"]))
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe, Self.fdbShow,
                ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.3"],
                ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.9"],
            ]
        )
    }

    func testPeerLeavesRemovesOnlyItsEntry() async throws {
        script(matchingHost, fdb: ["10.0.0.2", "10.0.0.3"])
        _ = try await network.ensureNetwork(Self.config(peers: ["b": "10.0.0.2"]))
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe, Self.fdbShow,
                ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.3"],
            ]
        )
    }

    func testDriftedAttributesAreFixedInPlace() async throws {
        script(
            [.underlay(), .bridge(mtu: 1500, address: nil, up: false), .vxlan(mtu: 1500, master: nil, up: false)],
            fdb: ["10.0.0.2", "10.0.0.3"]
        )
        _ = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(
            Array(runner.commands.dropFirst(2)),
            [
                ["ip", "link", "set", "dev", "nl0", "mtu", "1450"],
                ["ip", "addr", "add", "172.30.0.1/16", "dev", "nl0"],
                ["ip", "link", "set", "dev", "nl0", "up"],
                ["ip", "link", "set", "dev", "nlvx-42", "mtu", "1450"],
                ["ip", "link", "set", "dev", "nlvx-42", "master", "nl0"],
                ["ip", "link", "set", "dev", "nlvx-42", "up"],
            ]
        )
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(created, [.address(link: "nl0", cidr: "172.30.0.1/16")])
    }

    func testWrongPrefixOnBridgeIsReplaced() async throws {
        script([.underlay(), .bridge(address: "172.30.0.1/24"), .vxlan()], fdb: ["10.0.0.2", "10.0.0.3"])
        _ = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(
            Array(runner.commands.dropFirst(2)),
            [
                ["ip", "addr", "del", "172.30.0.1/24", "dev", "nl0"],
                ["ip", "addr", "add", "172.30.0.1/16", "dev", "nl0"],
            ]
        )
    }

    func testDeviceWithWrongLocalAddressIsRecreated() async throws {
        script([.underlay(), .bridge(), .vxlan(local: "10.0.0.7")], fdb: ["10.0.0.2"])
        _ = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(
            Array(runner.commands.dropFirst(2)),
            [
                ["ip", "link", "del", "nlvx-42"],
                [
                    "ip", "link", "add", "nlvx-42", "mtu", "1450", "type", "vxlan", "id", "42", "dstport", "4789",
                    "local", "10.0.0.1", "nolearning",
                ],
                ["ip", "link", "set", "dev", "nlvx-42", "master", "nl0"],
                ["ip", "link", "set", "dev", "nlvx-42", "up"],
                ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.2"],
                ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.3"],
            ]
        )
    }

    func testMTUDefaultsFollowUnderlayAndExplicitMTUWins() async throws {
        script([.underlay(mtu: 9000)])
        var report = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(report.mtu, 8950)
        XCTAssertEqual(runner.commands[2], ["ip", "link", "set", "dev", "nl0", "mtu", "8950"])
        runner.clearCommands()
        report = try await network.ensureNetwork(Self.config(underlayMTU: 1400))
        XCTAssertEqual(report.mtu, 1350)
        runner.clearCommands()
        report = try await network.ensureNetwork(Self.config(mtu: 1300))
        XCTAssertEqual(report.mtu, 1300)
        XCTAssertEqual(runner.commands[2], ["ip", "link", "set", "dev", "nl0", "mtu", "1300"])
    }

    func testOverheadPerTunnelKind() {
        let base = Self.config()
        var gre = base
        gre.tunnel = .gre
        var ovs = base
        ovs.tunnel = .ovsGre
        XCTAssertEqual(base.effectiveMTU(underlayMTU: 1500), 1450)
        XCTAssertEqual(gre.effectiveMTU(underlayMTU: 1500), 1462)
        XCTAssertEqual(ovs.effectiveMTU(underlayMTU: 1500), 1462)
    }

    func testBridgeNameTakenByAnotherKindChangesNothing() async throws {
        script([.underlay(), FakeLink("nl0", index: 10, kind: "veth")])
        do {
            _ = try await network.ensureNetwork(Self.config())
            XCTFail("expected a conflict")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .conflict)
            XCTAssertTrue(error.message.contains("nl0"), error.message)
            XCTAssertTrue(error.message.contains("not a bridge"), error.message)
        }
        XCTAssertEqual(runner.commands, [Self.observe])
        let failures = try await network.verify(Self.config())
        XCTAssertEqual(failures.map(\.check), [.bridgePresent])
    }

    func testVerifyReportsEveryFailedCheckOnAFreshHost() async throws {
        script([])
        let failures = try await network.verify(Self.config())
        XCTAssertEqual(
            failures.map(\.check),
            [
                .underlay, .bridgePresent, .bridgeMTU, .bridgeAddress, .bridgeUp, .tunnelDevice, .tunnelMaster,
                .tunnelUp,
                .tunnelFDB, .tunnelFDB,
            ]
        )
        XCTAssertEqual(runner.commands, [Self.observe], "verify changes nothing")
    }

    func testVerifyReportsStaleAndMissingEntriesAndMTU() async throws {
        script([.underlay(), .bridge(mtu: 1500), .vxlan()], fdb: ["10.0.0.2", "10.0.0.5"])
        let failures = try await network.verify(Self.config())
        XCTAssertEqual(failures.map(\.check), [.bridgeMTU, .tunnelFDB, .tunnelFDB])
        XCTAssertTrue(failures[1].detail.contains("10.0.0.5"), failures[1].detail)
        XCTAssertTrue(failures[2].detail.contains("10.0.0.3"), failures[2].detail)
    }

    func testVXLANWithoutVNIIsRejected() async throws {
        var config = Self.config()
        config.vni = 0
        do {
            _ = try await network.ensureNetwork(config)
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .invalidConfiguration)
        }
        XCTAssertEqual(runner.commands, [])
    }

    func testTeardownRemovesOnlyWhatWasCreated() async throws {
        script([.underlay()])
        _ = try await network.ensureNetwork(Self.config())
        script([.underlay(), .bridge(), .vxlan()])
        runner.clearCommands()
        try await network.teardown(network: "blue")
        XCTAssertEqual(
            runner.commands,
            [Self.observe, ["ip", "link", "del", "nlvx-42"], ["ip", "link", "del", "nl0"]]
        )
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(created, [])
        runner.clearCommands()
        try await network.teardown(network: "blue")
        XCTAssertEqual(runner.commands, [], "a second teardown has nothing to remove")
    }

    func testTeardownLeavesAnOperatorsBridge() async throws {
        script([.underlay(), .bridge(address: nil)])
        _ = try await network.ensureNetwork(Self.config())
        script([.underlay(), .bridge(), .vxlan()])
        runner.clearCommands()
        try await network.teardown(network: "blue")
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe, ["ip", "addr", "del", "172.30.0.1/16", "dev", "nl0"], ["ip", "link", "del", "nlvx-42"],
            ]
        )
    }

    func testTeardownOfAnAdoptedNetworkRemovesOnlyTheEntryItAppended() async throws {
        script(matchingHost, fdb: ["10.0.0.2"])
        _ = try await network.ensureNetwork(Self.config())
        runner.clearCommands()
        try await network.teardown(network: "blue")
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe, ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "nlvx-42", "dst", "10.0.0.3"],
            ]
        )
    }

    func testFailingCommandCarriesCommandStatusAndStderr() async throws {
        script([.underlay()])
        runner.on(
            ["ip", "link", "add", "nl0", "type", "bridge"],
            reply: .failure(status: 2, stderr: "RTNETLINK answers: Operation not permitted\n")
        )
        do {
            _ = try await network.ensureNetwork(Self.config())
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .commandFailed)
            XCTAssertEqual(error.command, ["ip", "link", "add", "nl0", "type", "bridge"])
            XCTAssertEqual(error.status, 2)
            XCTAssertEqual(error.stderr, "RTNETLINK answers: Operation not permitted")
            XCTAssertEqual(
                error.description,
                "command-failed: `ip link add nl0 type bridge` exited with status 2: "
                    + "RTNETLINK answers: Operation not permitted"
            )
        }
        XCTAssertEqual(runner.commands.count, 2, "nothing runs after the failed command")
    }

    func testConcurrentOperationsDoNotInterleave() async throws {
        script(matchingHost, fdb: ["10.0.0.2"])
        let network = self.network!
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { _ = try? await network.ensureNetwork(Self.config()) }
            }
        }
        // Each operation is observe, fdb show, append: never two observations in a row.
        let commands = runner.commands
        XCTAssertEqual(commands.count, 24)
        for start in stride(from: 0, to: commands.count, by: 3) {
            XCTAssertEqual(commands[start], Self.observe)
            XCTAssertEqual(commands[start + 1], Self.fdbShow)
            XCTAssertEqual(commands[start + 2].prefix(3), ["bridge", "fdb", "append"])
        }
    }
}
