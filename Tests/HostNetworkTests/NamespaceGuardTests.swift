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
    private func assertRefused(_ namespace: NetworkNamespace, _ why: String, line: UInt = #line) {
        XCTAssertThrowsError(try NamespaceGuard.system.check(namespace), line: line) { error in
            let error = error as? HostNetworkError
            XCTAssertEqual(error?.code, .invalidConfiguration, line: line)
            XCTAssertTrue(error?.message.contains(why) ?? false, error?.message ?? "", line: line)
        }
    }

    func testContainerNamespacesPassAndTheHostsOwnAndOtherFilesDoNot() async throws {
        let container = try await lab.addNamespace(role: "c1")
        XCTAssertNoThrow(try NamespaceGuard.system.check(.named(container)))
        XCTAssertNoThrow(try NamespaceGuard.system.check(.path("/var/run/netns/" + container)))

        assertRefused(.path("/proc/self/ns/net"), "is not a container's network namespace")
        // PID 1's: the host's (here the same as the test's own), or out of reach inside a container.
        XCTAssertThrowsError(try NamespaceGuard.system.check(.path("/proc/1/ns/net")))
        assertRefused(.path("/proc/\(getpid())/ns/net"), "the agent's own")
        assertRefused(.named(container + "-missing"), "cannot open")

        // A symbolic link in a runtime directory (even to a good namespace), a plain file, and a namespace of
        // another kind where network namespaces are expected; removed with the lab.
        let link = "/var/run/netns/\(container)-link"
        let plain = "/var/run/netns/\(container)-file"
        let uts = "/var/run/netns/\(container)-uts"
        lab.onDestroy {
            _ = umount(uts)
            for path in [link, plain, uts] { try? FileManager.default.removeItem(atPath: path) }
        }
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/var/run/netns/" + container)
        assertRefused(.path(link), "symbolic link")
        FileManager.default.createFile(atPath: plain, contents: Data())
        assertRefused(.path(plain), "not a namespace file")
        FileManager.default.createFile(atPath: uts, contents: Data())
        _ = try await ProcessCommandRunner().run(["mount", "--bind", "/proc/self/ns/uts", uts])
        assertRefused(.path(uts), "not a network namespace")
    }
}
