import Foundation
import Glibc
import NetleaseLab
import XCTest

@testable import HostNetwork

/// Where container namespaces may be, as a table (no files needed).
final class NamespaceGuardLocationTests: XCTestCase {
    func testOnlyRuntimeDirectoriesAndProcPIDAreAccepted() {
        let accepted: [(String, Bool)] = [
            ("/var/run/netns/ctr1", false), ("/run/netns/cni-1234", false), ("/run/docker/netns/0a1b2c", false),
            ("/var/run/docker/netns/default", false), ("/run/user/1000/netns/netns-9", false),
            ("/var/run/user/0/netns/x", false), ("/proc/4242/ns/net", true),
        ]
        for (path, follow) in accepted {
            XCTAssertEqual(NamespaceGuard.location(of: path), follow, path)
        }
        for path in [
            "/proc/self/ns/net", "/proc/thread-self/ns/net", "/proc/1/ns/mnt", "/proc/4242/task/4242/ns/net",
            "/etc/hostname", "/var/run/netns", "/var/run/netns/", "/var/run/netns/a/b", "/var/run/netns/../x",
            "/var/run/netns/./x", "/var/run//netns/x", "/run/user/me/netns/x", "/run/user/1000/netns", "relative",
            "/tmp/netns/x",
        ] {
            XCTAssertNil(NamespaceGuard.location(of: path), path)
        }
    }
}

/// The file checks on real namespaces and files. Runs under `wt`/root with a private mount namespace, so the bind
/// mounts made here vanish with the test process as well.
final class RootNamespaceGuardTests: NamespaceTestCase {
    /// `why`: a part of the message; nil when it may be any (the reason depends on where the test runs).
    private func assertRefused(_ namespace: NetworkNamespace, _ why: String?, line: UInt = #line) async {
        do {
            try await NamespaceGuard.system.check(namespace)
            XCTFail("\(namespace) was accepted", line: line)
        } catch {
            let error = error as? HostNetworkError
            XCTAssertEqual(error?.code, .invalidConfiguration, line: line)
            if let why { XCTAssertTrue(error?.message.contains(why) ?? false, error?.message ?? "", line: line) }
        }
    }

    func testContainerNamespacesPassAndTheHostsOwnAndOtherFilesDoNot() async throws {
        let container = try await lab.addNamespace(role: "c1")
        try await NamespaceGuard.system.check(.named(container))
        try await NamespaceGuard.system.check(.path("/var/run/netns/" + container))

        await assertRefused(.path("/proc/self/ns/net"), "is not a container's network namespace")
        // PID 1's: the host's (here the same as the test's own), or out of reach inside a container.
        await assertRefused(.path("/proc/1/ns/net"), nil)
        await assertRefused(.path("/proc/\(getpid())/ns/net"), "the agent's own")
        await assertRefused(.named(container + "-missing"), "cannot open")

        // A symbolic link in a runtime directory (even to a good namespace), a plain file, a FIFO (which must not
        // block the open), and a namespace of another kind where network namespaces are expected; removed with the
        // lab.
        let link = "/var/run/netns/\(container)-link"
        let plain = "/var/run/netns/\(container)-file"
        let fifo = "/var/run/netns/\(container)-fifo"
        let uts = "/var/run/netns/\(container)-uts"
        lab.onDestroy {
            _ = umount(uts)
            for path in [link, plain, fifo, uts] { try? FileManager.default.removeItem(atPath: path) }
        }
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/var/run/netns/" + container)
        await assertRefused(.path(link), "symbolic link")
        FileManager.default.createFile(atPath: plain, contents: Data())
        await assertRefused(.path(plain), "not a namespace file")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        await assertRefused(.path(fifo), "not a namespace file")
        FileManager.default.createFile(atPath: uts, contents: Data())
        _ = try await ProcessCommandRunner().run(["mount", "--bind", "/proc/self/ns/uts", uts])
        await assertRefused(.path(uts), "not a network namespace")
    }

    /// The kernel hands a freed namespace's inode to the next namespace made, so a namespace deleted and made again
    /// under its name may have the old inode; its identity differs all the same (the cookie never repeats).
    func testANamespaceMadeAgainUnderTheSameNameHasAnotherIdentity() async throws {
        let container = try await lab.addNamespace(role: "c1")
        let first = try await NamespaceGuard.system.pin(.named(container))
        let before = try XCTUnwrap(first.identity, "this kernel gives namespaces no identity")
        XCTAssertTrue(first.path.hasPrefix("/proc/\(getpid())/fd/"), first.path)
        first.close()
        let again = try await NamespaceGuard.system.pin(.named(container))
        XCTAssertEqual(again.identity, before, "one namespace, two identities")
        again.close()

        let system = ProcessCommandRunner()
        try await system.run(["ip", "netns", "del", container])
        try await system.run(["ip", "netns", "add", container])
        let replaced = try await NamespaceGuard.system.pin(.named(container))
        defer { replaced.close() }
        XCTAssertNotNil(replaced.identity)
        XCTAssertNotEqual(replaced.identity, before, "a new namespace under the old name has the old identity")
    }
}
