import NetleaseCore
import NetleaseTesting
import XCTest

@testable import HostNetwork

/// `LinuxHostNetwork` with one gretap device per peer, against a scripted host.
final class GretapMeshTests: XCTestCase {
    static let observe = ["ip", "-d", "-j", "addr", "show"]

    private var runner: RecordingCommandRunner!
    private var network: LinuxHostNetwork!

    override func setUp() {
        runner = RecordingCommandRunner()
        network = LinuxHostNetwork(runner: runner)
    }

    static func config(
        peers: [String: String] = ["b": "10.0.0.2", "c": "10.0.0.3"],
        vni: UInt32 = 0
    )
        -> HostNetworkConfig
    {
        HostNetworkConfig(
            network: "green",
            bridge: "nl0",
            bridgeAddress: IPv4Address(172, 30, 0, 1),
            prefix: 16,
            tunnel: .gre,
            vni: vni,
            underlay: IPv4Address(10, 0, 0, 1),
            peers: peers.mapValues { IPv4Address($0)! }
        )
    }

    /// The gretap device towards each peer on bridge nl0, as operators see it in `ip link`. Literals: the names must
    /// not change between releases, or a new agent would no longer find the devices an old one created.
    static let devices = ["b": "nlge839036c60d4", "c": "nlge839026c60d4", "d": "nlge839016c60d4"]

    static func device(_ peer: String) -> String { devices[peer]! }

    static func creation(_ peer: String, _ remote: String, key: UInt32? = nil) -> [[String]] {
        let name = device(peer)
        var add = ["ip", "link", "add", name, "mtu", "1462", "type", "gretap", "local", "10.0.0.1", "remote", remote]
        if let key { add += ["key", "\(key)"] }
        return [add, ["ip", "link", "set", "dev", name, "master", "nl0"], ["ip", "link", "set", "dev", name, "up"]]
    }

    /// Peers in the order the plan creates them: by device name.
    static func ordered(_ peers: [String: String]) -> [(String, String)] {
        peers.sorted { device($0.key) < device($1.key) }.map { ($0.key, $0.value) }
    }

    func testFreshHostGetsOneGretapDevicePerPeer() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay()])))
        let report = try await network.ensureNetwork(Self.config(vni: 7))
        XCTAssertEqual(report.mtu, 1462)
        var expected: [[String]] = [
            Self.observe,
            ["ip", "link", "add", "nl0", "type", "bridge"],
            ["ip", "link", "set", "dev", "nl0", "mtu", "1462"],
            ["ip", "addr", "add", "172.30.0.1/16", "dev", "nl0"],
            ["ip", "link", "set", "dev", "nl0", "up"],
        ]
        for (peer, remote) in Self.ordered(["b": "10.0.0.2", "c": "10.0.0.3"]) {
            expected += Self.creation(peer, remote, key: 7)
        }
        XCTAssertEqual(runner.commands, expected)
    }

    func testMissingKernelSupportIsAClearError() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge(mtu: 1462)])))
        runner.on(prefix: ["ip", "link", "add"], reply: .failure(status: 2, stderr: "Error: Unknown device type.\n"))
        do {
            _ = try await network.ensureNetwork(Self.config())
            XCTFail("expected missing kernel support")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .missingKernelSupport)
            XCTAssertTrue(error.message.contains("gretap"), error.message)
            XCTAssertTrue(error.message.contains("ip_gre"), error.message)
            XCTAssertTrue(error.message.contains("Unknown device type"), error.message)
            XCTAssertEqual(error.status, 2)
            XCTAssertEqual(error.command.prefix(3), ["ip", "link", "add"])
        }
    }

    func testOtherFailuresOfGretapCreationStayCommandFailures() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge(mtu: 1462)])))
        runner.on(prefix: ["ip", "link", "add"], reply: .failure(status: 2, stderr: "RTNETLINK answers: File exists"))
        do {
            _ = try await network.ensureNetwork(Self.config())
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .commandFailed)
        }
    }

    private var matching: [FakeLink] {
        [
            .underlay(), .bridge(mtu: 1462),
            .gretap(Self.device("b"), index: 20, remote: "10.0.0.2"),
            .gretap(Self.device("c"), index: 21, remote: "10.0.0.3"),
        ]
    }

    func testMatchingHostSeesNoChangingCommand() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render(matching)))
        let report = try await network.ensureNetwork(Self.config())
        XCTAssertEqual(report.changes, [])
        XCTAssertEqual(runner.commands, [Self.observe])
        let failures = try await network.verify(Self.config())
        XCTAssertEqual(failures, [])
    }

    func testPeerJoinsMovesAndLeaves() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render(matching)))
        _ = try await network.ensureNetwork(Self.config(peers: ["b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"]))
        XCTAssertEqual(Array(runner.commands.dropFirst()), Self.creation("d", "10.0.0.4"))

        runner.clearCommands()
        _ = try await network.ensureNetwork(Self.config(peers: ["b": "10.0.0.2", "c": "10.0.0.9"]))
        XCTAssertEqual(
            Array(runner.commands.dropFirst()),
            [["ip", "link", "del", Self.device("c")]] + Self.creation("c", "10.0.0.9")
        )

        runner.clearCommands()
        _ = try await network.ensureNetwork(Self.config(peers: ["b": "10.0.0.2"]))
        XCTAssertEqual(Array(runner.commands.dropFirst()), [["ip", "link", "del", Self.device("c")]])
    }

    func testVerifyReportsMissingAndStalePeers() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render(matching)))
        let failures = try await network.verify(Self.config(peers: ["b": "10.0.0.2", "d": "10.0.0.4"]))
        XCTAssertEqual(failures.map(\.check), [.tunnelPeers, .tunnelPeers, .tunnelMaster, .tunnelUp])
    }

    func testDeviceNamesFitTheKernelLimit() {
        for (peer, name) in Self.devices {
            XCTAssertEqual(InterfaceNames.gretap(bridge: "nl0", peer: peer), name)
        }
        let name = InterfaceNames.gretap(bridge: "nl0", peer: String(repeating: "very-long-host-name-", count: 3))
        XCTAssertEqual(name, "nlg456f3e7b98a9")
        XCTAssertLessThanOrEqual(name.utf8.count, 15)
        XCTAssertTrue(Names.isValidInterface(name))
        XCTAssertEqual(InterfaceNames.gretap(bridge: "nl1", peer: "b"), "nlgdf8ec86c5bea")
    }
}
