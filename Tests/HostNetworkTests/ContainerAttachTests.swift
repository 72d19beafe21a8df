import NetleaseCore
import NetleaseTesting
import XCTest

@testable import HostNetwork

/// `attach` / `detach` against a scripted host and container namespace.
final class ContainerAttachTests: XCTestCase {
    static let observe = ["ip", "-d", "-j", "addr", "show"]

    private var runner: RecordingCommandRunner!
    private var network: LinuxHostNetwork!

    override func setUp() {
        runner = RecordingCommandRunner()
        network = LinuxHostNetwork(runner: runner)
    }

    static func attachment(
        _ namespace: NetworkNamespace = .named("ctr1"),
        address: String = "172.30.0.11"
    )
        -> ContainerAttachment
    {
        ContainerAttachment(
            network: "blue",
            owner: "container-4711",
            namespace: namespace,
            address: IPv4Address(address)!,
            prefix: 16,
            gateway: IPv4Address(172, 30, 0, 1),
            bridge: "nl0"
        )
    }

    /// The host end of container-4711's veth in network blue, as operators see it in `ip link`. A literal: the name
    /// must not change between releases, or a new agent would no longer find the links an old one created.
    static let host = "nl2a15d89624ba"

    func testHostVethNameIsDeterministicAndShort() {
        XCTAssertEqual(InterfaceNames.containerVeth(network: "blue", owner: "container-4711"), Self.host)
        XCTAssertEqual(Self.host.utf8.count, 14)
        XCTAssertEqual(InterfaceNames.containerVeth(network: "blue", owner: "container-4712"), "nl2a15d79624ba")
        XCTAssertEqual(InterfaceNames.containerVeth(network: "red", owner: "container-4711"), "nlcbb3b226936f")
        XCTAssertEqual(Self.attachment().hostInterface, Self.host)
    }

    func testFreshAttachByName() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        let attached = try await network.attach(Self.attachment())
        let inside = ["nsenter", "--net=/var/run/netns/ctr1"]
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe,
                [
                    "ip", "link", "add", Self.host, "mtu", "1450", "type", "veth", "peer", "name", "eth0", "mtu",
                    "1450",
                    "netns", "/var/run/netns/ctr1",
                ],
                ["ip", "link", "set", "dev", Self.host, "master", "nl0"],
                ["ip", "link", "set", "dev", Self.host, "up"],
                inside + ["ip", "addr", "add", "172.30.0.11/16", "dev", "eth0"],
                inside + ["ip", "link", "set", "dev", "eth0", "up"],
                inside + ["ip", "route", "replace", "default", "via", "172.30.0.1", "dev", "eth0"],
            ]
        )
        XCTAssertEqual(attached.hostInterface, Self.host)
        XCTAssertEqual(attached.containerInterface, "eth0")
        XCTAssertEqual(attached.mtu, 1450)
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(created, [.link(Self.host)])
    }

    func testFreshAttachByPathWithOwnNameAndMTU() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        var attachment = Self.attachment(.path("/proc/4242/ns/net"))
        attachment.ifname = "net1"
        attachment.mtu = 1400
        _ = try await network.attach(attachment)
        XCTAssertEqual(
            runner.commands[1],
            [
                "ip", "link", "add", Self.host, "mtu", "1400", "type", "veth", "peer", "name", "net1", "mtu", "1400",
                "netns", "/proc/4242/ns/net",
            ]
        )
        XCTAssertEqual(
            runner.commands[4],
            [
                "nsenter", "--net=/proc/4242/ns/net", "ip", "addr", "add",
                "172.30.0.11/16", "dev", "net1",
            ]
        )
    }

    private func scriptAttached(
        address: String = "172.30.0.11/16",
        route: String = "172.30.0.1",
        peerIndex: Int = 2
    ) {
        runner.on(
            Self.observe,
            reply: .output(
                FakeLink.render([
                    .underlay(), .bridge(),
                    FakeLink(Self.host, index: 40, kind: "veth", mtu: 1450, master: "nl0", peerIndex: 2),
                ])
            )
        )
        let inside = ["nsenter", "--net=/var/run/netns/ctr1"]
        runner.on(
            inside + Self.observe,
            reply: .output(
                FakeLink.render([
                    FakeLink(
                        "eth0",
                        index: 2,
                        kind: "veth",
                        mtu: 1450,
                        addresses: [address],
                        peerIndex: peerIndex == 2 ? 40 : 99
                    )
                ])
            )
        )
        runner.on(
            inside + ["ip", "-j", "route", "show", "default"],
            reply: .output(#"[{"dst":"default","gateway":"\#(route)","dev":"eth0","flags":[]}]"#)
        )
    }

    func testAttachAgainChangesNothing() async throws {
        scriptAttached()
        let attached = try await network.attach(Self.attachment())
        let inside = ["nsenter", "--net=/var/run/netns/ctr1"]
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe, inside + Self.observe, inside + ["ip", "-j", "route", "show", "default"],
            ]
        )
        XCTAssertEqual(attached.changes, [])
    }

    func testAttachWithNewAddressReplacesTheOldOne() async throws {
        scriptAttached(address: "172.30.0.99/16", route: "172.30.0.254")
        _ = try await network.attach(Self.attachment())
        let inside = ["nsenter", "--net=/var/run/netns/ctr1"]
        XCTAssertEqual(
            Array(runner.commands.dropFirst(3)),
            [
                inside + ["ip", "addr", "del", "172.30.0.99/16", "dev", "eth0"],
                inside + ["ip", "addr", "add", "172.30.0.11/16", "dev", "eth0"],
                inside + ["ip", "route", "replace", "default", "via", "172.30.0.1", "dev", "eth0"],
            ]
        )
    }

    func testStaleHostVethOfAnOldContainerIsReplaced() async throws {
        scriptAttached(peerIndex: 7)
        _ = try await network.attach(Self.attachment())
        XCTAssertEqual(runner.commands[2], ["ip", "link", "del", Self.host])
        XCTAssertEqual(runner.commands[3].prefix(4), ["ip", "link", "add", Self.host])
        XCTAssertEqual(runner.commands.count, 9)
    }

    func testAttachWithoutBridgeFails() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay()])))
        do {
            _ = try await network.attach(Self.attachment())
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .invalidConfiguration)
            XCTAssertTrue(error.message.contains("nl0"), error.message)
        }
        XCTAssertEqual(runner.commands, [Self.observe])
    }

    func testBadRequestsAreRefusedBeforeAnyCommand() async throws {
        var attachment = Self.attachment(.path("relative/path"))
        await assertInvalid(attachment)
        attachment = Self.attachment(.named("a/b"))
        await assertInvalid(attachment)
        attachment = Self.attachment()
        attachment.ifname = "much-too-long-name"
        await assertInvalid(attachment)
        attachment = Self.attachment()
        attachment.owner = ""
        await assertInvalid(attachment)
        XCTAssertEqual(runner.commands, [])
    }

    private func assertInvalid(_ attachment: ContainerAttachment, line: UInt = #line) async {
        do {
            _ = try await network.attach(attachment)
            XCTFail("expected an error", line: line)
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .invalidConfiguration, line: line)
        } catch {
            XCTFail("unexpected \(error)", line: line)
        }
    }

    func testDetachDeletesTheHostEndOnlyWhenPresent() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        _ = try await network.attach(Self.attachment())
        scriptAttached()
        runner.clearCommands()
        try await network.detach(network: "blue", owner: "container-4711")
        XCTAssertEqual(runner.commands, [Self.observe, ["ip", "link", "del", Self.host]])
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(created, [])

        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        runner.clearCommands()
        try await network.detach(network: "blue", owner: "container-4711")
        XCTAssertEqual(runner.commands, [Self.observe])
    }
}
