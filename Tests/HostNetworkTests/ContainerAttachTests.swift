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
        // The namespaces of these tests exist only in the scripted replies.
        network = LinuxHostNetwork(
            runner: runner,
            namespaceGuard: NamespaceGuard { namespace, _ in
                PinnedNamespace(namespace: namespace, path: Self.pinned, identity: nil)
            }
        )
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
            bridge: "nl0",
            naming: naming
        )
    }

    /// Where the scripted guard says it holds every namespace open: commands must name it, never the caller's path.
    static let pinned = "/proc/4242/fd/9"

    /// A fixed key, so names are literals here.
    static let naming = ContainerNaming(key: Array(0...15))

    /// The host end of container-4711's veth in network blue under that key, as operators see it in `ip link`. A
    /// literal: the name must not change between releases, or a new agent would no longer find the links an old
    /// one created. (Cross-checked with `openssl mac … SIPHASH`.)
    static let host = "nl1vhoegpgckr6j"
    /// Its container end's MAC.
    static let mac = "82:6c:a6:3d:bb:86"

    func testHostVethNameIsKeyedDeterministicAndShort() {
        let naming = Self.naming
        XCTAssertEqual(naming.hostVeth(network: "blue", owner: "container-4711"), Self.host)
        XCTAssertEqual(Self.host.utf8.count, 15)
        XCTAssertEqual(naming.hostVeth(network: "blue", owner: "container-4712"), "nlffe92v05r403b")
        XCTAssertEqual(naming.hostVeth(network: "red", owner: "container-4711"), "nl4g22qm4svqks6")
        XCTAssertEqual(naming.containerMAC(network: "blue", owner: "container-4711"), Self.mac)
        XCTAssertEqual(Self.attachment().hostInterface, Self.host)
        let other = ContainerNaming(key: Array(repeating: 7, count: 16))
        XCTAssertNotEqual(
            other.hostVeth(network: "blue", owner: "container-4711"),
            Self.host,
            "another host's key gives other names"
        )
        // The names of older releases are still known, to find their links.
        XCTAssertEqual(InterfaceNames.unkeyedContainerVeth(network: "blue", owner: "container-4711"), "nl2a15d89624ba")
        XCTAssertEqual(ContainerNaming(hex: naming.hex), naming)
        for name in [Self.host, "nl2a15d89624ba"] { XCTAssertTrue(InterfaceNames.isContainerVeth(name), name) }
        for name in ["nl-prod", "nlvx-42", "nl2a15d89624bz", "nl1vhoegpgckr6w", "veth1234567", "nl"] {
            XCTAssertFalse(InterfaceNames.isContainerVeth(name), name)
        }
        XCTAssertNil(ContainerNaming(hex: "00"))
    }

    func testSipHashMatchesTheReferenceVectors() {
        let key = Array(UInt8(0)...15)
        XCTAssertEqual(SipHash24.hash([], key: key), 0x726f_db47_dd0e_0e31)
        XCTAssertEqual(SipHash24.hash(Array(0...14), key: key), 0xa129_ca61_49be_45e5)
        XCTAssertEqual(
            SipHash24.hash(
                Array("veth\u{0}blue\u{0}ctr-a5b939".utf8),
                key: [
                    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                    0xcc, 0xdd, 0xee, 0xff,
                ]
            ),
            0x74b8_94db_fbe0_0506
        )
    }

    func testFreshAttachByName() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        let attached = try await network.attach(Self.attachment())
        let inside = ["nsenter", "--net=/proc/4242/fd/9"]
        XCTAssertEqual(
            runner.commands,
            [
                Self.observe,
                inside + Self.observe,
                [
                    "ip", "link", "add", Self.host, "mtu", "1450", "type", "veth", "peer", "name", "eth0", "address",
                    Self.mac, "mtu", "1450", "netns", "/proc/4242/fd/9",
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
        XCTAssertEqual(attached.containerMAC, Self.mac)
        XCTAssertTrue(attached.created)
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(created, [.link(Self.host)])
    }

    func testAFailedFreshAttachRemovesOnlyThePairItMade() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        let inside = ["nsenter", "--net=/proc/4242/fd/9"]
        runner.on(
            inside + ["ip", "addr", "add", "172.30.0.11/16", "dev", "eth0"],
            reply: .failure(status: 2, stderr: "RTNETLINK answers: Permission denied")
        )
        do {
            _ = try await network.attach(Self.attachment())
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .commandFailed)
        }
        XCTAssertEqual(
            Array(runner.commands.suffix(2)),
            [
                inside + ["ip", "addr", "add", "172.30.0.11/16", "dev", "eth0"], ["ip", "link", "del", Self.host],
            ]
        )
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(created, [])
    }

    func testAnInterfaceOfThatNameInTheNamespaceIsNotOverwritten() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        runner.on(
            ["nsenter", "--net=/proc/4242/fd/9"] + Self.observe,
            reply: .output(FakeLink.render([FakeLink("eth0", index: 2, kind: "veth", peerIndex: 77)]))
        )
        do {
            _ = try await network.attach(Self.attachment())
            XCTFail("expected a conflict")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .conflict, error.message)
        }
        XCTAssertEqual(runner.commands.count, 2, "\(runner.commands)")
    }

    func testFreshAttachByPathWithOwnNameAndMTU() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        var attachment = Self.attachment(.path("/proc/4242/ns/net"))
        attachment.ifname = "net1"
        attachment.mtu = 1400
        _ = try await network.attach(attachment)
        XCTAssertEqual(
            runner.commands[2],
            [
                "ip", "link", "add", Self.host, "mtu", "1400", "type", "veth", "peer", "name", "net1", "address",
                Self.mac,
                "mtu", "1400", "netns", "/proc/4242/fd/9",
            ]
        )
        XCTAssertEqual(
            runner.commands[5],
            [
                "nsenter", "--net=/proc/4242/fd/9", "ip", "addr", "add",
                "172.30.0.11/16", "dev", "net1",
            ]
        )
    }

    private func scriptAttached(
        address: String = "172.30.0.11/16",
        route: String = "172.30.0.1",
        peerIndex: Int = 2,
        host: String = ContainerAttachTests.host
    ) {
        runner.on(
            Self.observe,
            reply: .output(
                FakeLink.render([
                    .underlay(), .bridge(),
                    FakeLink(host, index: 40, kind: "veth", mtu: 1450, master: "nl0", peerIndex: 2),
                ])
            )
        )
        let inside = ["nsenter", "--net=/proc/4242/fd/9"]
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
        let inside = ["nsenter", "--net=/proc/4242/fd/9"]
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
        let inside = ["nsenter", "--net=/proc/4242/fd/9"]
        XCTAssertEqual(
            Array(runner.commands.dropFirst(3)),
            [
                inside + ["ip", "addr", "del", "172.30.0.99/16", "dev", "eth0"],
                inside + ["ip", "addr", "add", "172.30.0.11/16", "dev", "eth0"],
                inside + ["ip", "route", "replace", "default", "via", "172.30.0.1", "dev", "eth0"],
            ]
        )
    }

    /// A host end with this owner's name whose peer is not the requested interface in the requested namespace is
    /// someone else's (another owner whose name collides, or a container still running elsewhere): it is never
    /// deleted, and nothing is created.
    func testAVethLeadingElsewhereIsNeverDeleted() async throws {
        scriptAttached(peerIndex: 7)
        do {
            _ = try await network.attach(Self.attachment())
            XCTFail("expected a conflict")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .conflict, error.message)
        }
        XCTAssertFalse(runner.commands.contains(["ip", "link", "del", Self.host]), "\(runner.commands)")
        XCTAssertFalse(runner.commands.contains { $0.starts(with: ["ip", "link", "add"]) }, "\(runner.commands)")
    }

    /// Plain FNV-1a names could be made to collide offline: these two owners shared `nl5649c68bcd2f`.
    func testOwnersWhoseUnkeyedNamesCollidedGetDifferentVeths() {
        XCTAssertEqual(InterfaceNames.unkeyedContainerVeth(network: "blue", owner: "ctr-a5b939"), "nl5649c68bcd2f")
        XCTAssertEqual(InterfaceNames.unkeyedContainerVeth(network: "blue", owner: "ctr-16e4adf"), "nl5649c68bcd2f")
        XCTAssertEqual(Self.naming.hostVeth(network: "blue", owner: "ctr-a5b939"), "nl19bn0u15nurga")
        XCTAssertEqual(Self.naming.hostVeth(network: "blue", owner: "ctr-16e4adf"), "nlb63ok62pvlsg7")
    }

    /// A link of an older release under the unkeyed name is this container's only when it leads to the container;
    /// then it is fixed in place and detached like a keyed one. Otherwise (a colliding owner's) it is ignored.
    func testAnOlderReleasesLinkIsUsedOnlyWhenItLeadsToTheContainer() async throws {
        let legacy = "nl2a15d89624ba"
        scriptAttached(host: legacy)
        let attached = try await network.attach(Self.attachment())
        XCTAssertEqual(attached.hostInterface, legacy)
        XCTAssertFalse(attached.created)
        XCTAssertEqual(attached.changes, [])
        runner.clearCommands()
        try await network.detach(Self.attachment().link)
        XCTAssertEqual(runner.commands.last, ["ip", "link", "del", legacy])

        // The same name leading into another namespace: a colliding owner's, ignored.
        runner.on(
            Self.observe,
            reply: .output(
                FakeLink.render([
                    .underlay(), .bridge(),
                    FakeLink(legacy, index: 40, kind: "veth", mtu: 1450, master: "nl0", peerIndex: 2),
                ])
            )
        )
        runner.on(["nsenter", "--net=/proc/4242/fd/9"] + Self.observe, reply: .output(FakeLink.render([])))
        runner.clearCommands()
        _ = try await network.attach(Self.attachment())
        XCTAssertFalse(runner.commands.contains(["ip", "link", "del", legacy]))
        XCTAssertEqual(runner.commands[2].prefix(4), ["ip", "link", "add", Self.host])
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

    func testDetachDeletesTheHostEndOnlyWhenItLeadsToTheContainer() async throws {
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        _ = try await network.attach(Self.attachment())
        scriptAttached()
        runner.clearCommands()
        try await network.detach(Self.attachment().link)
        let inside = ["nsenter", "--net=/proc/4242/fd/9"]
        XCTAssertEqual(runner.commands, [Self.observe, inside + Self.observe, ["ip", "link", "del", Self.host]])
        let created = await network.createdResources(network: "blue")
        XCTAssertEqual(created, [])

        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge()])))
        runner.clearCommands()
        try await network.detach(Self.attachment().link)
        XCTAssertEqual(runner.commands, [Self.observe])

        // Its peer is elsewhere (or the namespace is gone): not ours to delete.
        scriptAttached(peerIndex: 7)
        runner.clearCommands()
        do {
            try await network.detach(Self.attachment().link)
            XCTFail("expected a conflict")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .conflict, error.message)
        }
        XCTAssertFalse(runner.commands.contains(["ip", "link", "del", Self.host]))
    }

    func testInspectReportsWhatAttachWouldFixAndChangesNothing() async throws {
        scriptAttached(address: "172.30.0.99/16", route: "172.30.0.254")
        let problems = try await network.inspect(Self.attachment())
        XCTAssertEqual(
            problems,
            [
                "eth0 has stale address 172.30.0.99/16", "eth0 lacks 172.30.0.11/16",
                "no default route via 172.30.0.1 dev eth0",
            ]
        )
        XCTAssertFalse(runner.commands.contains { $0.contains("add") || $0.contains("del") || $0.contains("replace") })
        scriptAttached(peerIndex: 7)
        let foreign = try await network.inspect(Self.attachment())
        XCTAssertEqual(foreign.count, 1)
        XCTAssertTrue(foreign[0].contains("does not lead into"), foreign[0])
    }

    /// A link that names the namespace it was attached to is not plumbed, inspected or detached in another one at its
    /// path: nothing is run inside it.
    func testANamespaceReplacedAtThePathIsNeitherPlumbedNorLookedInto() async throws {
        let now = NamespaceIdentity(boot: "b", cookie: 8, inode: 4_026_532_177)
        let network = LinuxHostNetwork(
            runner: runner,
            namespaceGuard: NamespaceGuard { namespace, _ in
                PinnedNamespace(namespace: namespace, path: Self.pinned, identity: now)
            }
        )
        scriptAttached()
        var attachment = Self.attachment()
        attachment.namespaceIdentity = NamespaceIdentity(boot: "b", cookie: 7, inode: 4_026_532_177)
        do {
            _ = try await network.attach(attachment)
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .namespaceReplaced, error.message)
        }
        let problems = try await network.inspect(attachment)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems.first?.contains("the container is gone") ?? false, "\(problems)")
        do {
            try await network.detach(attachment.link)
            XCTFail("a host end whose peer cannot be proven was deleted")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .conflict, error.message)
        }
        XCTAssertFalse(runner.commands.contains { $0.first == "nsenter" }, "\(runner.commands)")
        XCTAssertFalse(runner.commands.contains(["ip", "link", "del", Self.host]))

        attachment.namespaceIdentity = now
        let attached = try await network.attach(attachment)
        XCTAssertEqual(attached.namespaceIdentity, now)
    }
}
