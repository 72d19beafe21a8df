import Foundation
import Glibc
import NetleaseCore
import NetleaseLab
import NetleaseTesting
import Synchronization
import XCTest

@testable import HostNetwork

/// A container's namespace is opened once, checked on that descriptor, and entered only through it: a path whose
/// directory its owner swaps after the check still leads every command into the namespace that was checked.
final class NamespacePinningTests: NamespaceTestCase {
    private static let observe = ["ip", "-d", "-j", "addr", "show"]

    private func attachment(_ namespace: NetworkNamespace, address: String = "172.30.0.11") -> ContainerAttachment {
        ContainerAttachment(
            network: "blue",
            owner: "container-4711",
            namespace: namespace,
            address: IPv4Address(address)!,
            prefix: 24,
            gateway: IPv4Address(172, 30, 0, 1),
            bridge: "nlpin0",
            naming: ContainerAttachTests.naming
        )
    }

    /// The real check on a real namespace, commands recorded: every command that reaches into the container names
    /// this process's descriptor (`/proc/PID/fd/N`), none names the caller's path, which could lead elsewhere by
    /// the time a child process resolves it.
    func testEveryCommandEntersThePinnedDescriptorNeverTheCallersPath() async throws {
        let container = try await lab.addNamespace(role: "c1")
        let callers = "/var/run/netns/" + container
        let runner = RecordingCommandRunner()
        runner.on(Self.observe, reply: .output(FakeLink.render([.underlay(), .bridge("nlpin0")])))
        let network = LinuxHostNetwork(runner: runner)

        _ = try await network.attach(attachment(.path(callers)))
        _ = try await network.inspect(attachment(.path(callers)))
        runner.on(
            Self.observe,
            reply: .output(
                FakeLink.render([
                    .underlay(), .bridge("nlpin0"),
                    FakeLink(ContainerAttachTests.host, index: 40, kind: "veth", master: "nlpin0", peerIndex: 2),
                ])
            )
        )
        try? await network.detach(attachment(.path(callers)).link)

        let pinned = "/proc/\(getpid())/fd/"
        var entering = 0
        for command in runner.commands {
            XCTAssertFalse(command.contains { $0.contains(callers) }, "names the caller's path: \(command)")
            if command.first == "nsenter" {
                entering += 1
                XCTAssertTrue(command[1].hasPrefix("--net=" + pinned), "\(command)")
            }
            if let index = command.firstIndex(of: "netns"), index + 1 < command.count {
                entering += 1
                XCTAssertTrue(command[index + 1].hasPrefix(pinned), "\(command)")
            }
        }
        // attach: look inside, create into it, address, up, route; inspect: look inside; detach: look inside.
        XCTAssertEqual(entering, 7, "\(runner.commands)")
    }

    /// `/run/user/UID/netns/NAME` (rootless podman's place) whose `netns` directory its owner swaps for another one
    /// right after the check: the container checked gets its interface, address and route (it reaches its
    /// gateway), the namespace swapped in gets nothing.
    func testASwappedUserDirectoryDoesNotRedirectTheAttach() async throws {
        let host = try await lab.addNamespace(role: "h1")
        let checked = try await lab.addNamespace(role: "c1")
        let decoy = try await lab.addNamespace(role: "c2")
        try await lab.run(host, ["ip", "link", "add", "nlpin0", "type", "bridge"])
        try await lab.run(host, ["ip", "addr", "add", "172.30.0.1/24", "dev", "nlpin0"])
        try await lab.run(host, ["ip", "link", "set", "nlpin0", "up"])

        // /run/user/UID/netns -> first/, later -> second/; each holds "ctr", a bind mount of one namespace.
        let user = "/run/user/\(UInt32.random(in: 3_000_000_000...4_000_000_000))"
        let first = lab.directory + "/first"
        let second = lab.directory + "/second"
        lab.onDestroy {
            for file in [first + "/ctr", second + "/ctr"] { _ = umount(file) }
            try? FileManager.default.removeItem(atPath: user)
        }
        for (directory, namespace) in [(first, checked), (second, decoy)] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: directory + "/ctr", contents: Data())
            _ = try await ProcessCommandRunner().run([
                "mount", "--bind", "/var/run/netns/" + namespace, directory + "/ctr",
            ])
        }
        try FileManager.default.createDirectory(atPath: user, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: user + "/netns", withDestinationPath: first)

        let swap: @Sendable () throws -> Void = {
            try FileManager.default.createSymbolicLink(atPath: user + "/swapped", withDestinationPath: second)
            guard rename(user + "/swapped", user + "/netns") == 0 else {
                throw HostNetworkError(.invalidConfiguration, "rename: \(String(cString: strerror(errno)))")
            }
        }
        let network = LinuxHostNetwork(runner: SwapBeforeFirstCommand(base: lab.commandRunner(in: host), swap: swap))
        let attached = try await network.attach(attachment(.path(user + "/netns/ctr")))
        XCTAssertTrue(attached.created)
        XCTAssertEqual(
            try FileManager.default.destinationOfSymbolicLink(atPath: user + "/netns"),
            second,
            "the directory was not swapped"
        )

        let inside = try await lab.run(checked, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
        XCTAssertTrue(inside.contains("172.30.0.11/24"), inside)
        let route = try await lab.run(checked, ["ip", "route", "show", "default"]).stdout
        XCTAssertTrue(route.contains("via 172.30.0.1 dev eth0"), route)
        let decoyLinks = try await lab.links(in: decoy)
        XCTAssertEqual(Set(decoyLinks.keys), ["lo"], "the namespace swapped in got an interface")
        let hostRoutes = try await lab.run(host, ["ip", "route", "show", "default"]).stdout
        XCTAssertEqual(hostRoutes, "", "the host got a default route")
        let reachable = await lab.ping(from: checked, to: IPv4Address(172, 30, 0, 1), within: .seconds(10))
        XCTAssertTrue(reachable, "the container cannot reach its gateway")
    }
}

/// Runs `swap` once, right before the first command: after the namespace check, before anything uses the path.
private final class SwapBeforeFirstCommand: CommandRunner {
    let base: any CommandRunner
    let swap: @Sendable () throws -> Void
    private let swapped = Mutex(false)

    init(base: any CommandRunner, swap: @escaping @Sendable () throws -> Void) {
        self.base = base
        self.swap = swap
    }

    func run(_ argv: [String]) async throws -> CommandResult {
        let first = swapped.withLock { done in
            defer { done = true }
            return !done
        }
        if first { try swap() }
        return try await base.run(argv)
    }
}
