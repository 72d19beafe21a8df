import HostNetwork
import NetleaseLab
import NetleaseTesting
import XCTest

/// What `netlease demo` checks before it builds anything, with scripted answers: each missing piece is named with
/// the package, module or capability that provides it.
final class LabPrerequisitesTests: XCTestCase {
    private func check(
        root: Bool = true,
        missing: Set<String> = [],
        echo: String? = nil,
        script: (RecordingCommandRunner) -> Void = { _ in }
    ) async -> (problems: [String], commands: [[String]]) {
        let runner = RecordingCommandRunner()
        script(runner)
        let prerequisites = LabPrerequisites(
            runner: runner,
            isRoot: root,
            findTool: { missing.contains($0) ? nil : "/usr/bin/\($0)" },
            echoProblem: { _ in echo },
            probeNamespace: "nlcheckt"
        )
        return (await prerequisites.problems(), runner.commands)
    }

    func testAllPresentTriesEachFeatureInAThrowawayNamespace() async {
        let (problems, commands) = await check()
        XCTAssertEqual(problems, [])
        XCTAssertEqual(
            commands,
            [
                ["ip", "netns", "add", "nlcheckt"],
                ["ip", "-n", "nlcheckt", "link", "add", "nlc0", "type", "veth", "peer", "name", "nlc1"],
                ["ip", "-n", "nlcheckt", "link", "add", "nlcb", "type", "bridge"],
                ["ip", "-n", "nlcheckt", "link", "add", "nlcx", "type", "vxlan", "id", "42", "dstport", "4789"],
                ["ip", "-n", "nlcheckt", "link", "set", "lo", "up"],
                ["ip", "netns", "del", "nlcheckt"],
            ]
        )
    }

    func testNotRootAndMissingToolsNameTheirPackagesAndTouchNothing() async {
        let (problems, commands) = await check(root: false, missing: ["ip", "bridge", "nsenter"])
        XCTAssertEqual(
            problems,
            [
                "root is needed (CAP_NET_ADMIN for links, CAP_SYS_ADMIN for namespaces, CAP_NET_RAW for ARP and ICMP): "
                    + "run sudo netlease demo",
                "`ip` is not installed: apt-get install iproute2",
                "`bridge` is not installed: apt-get install iproute2",
                "`nsenter` is not installed: apt-get install util-linux",
            ]
        )
        XCTAssertEqual(commands, [])
    }

    func testAMissingKernelModuleIsNamedAndTheNamespaceStillRemoved() async {
        let (problems, commands) = await check(echo: "raw ICMP sockets cannot be opened") { runner in
            runner.on(
                prefix: ["ip", "-n", "nlcheckt", "link", "add", "nlcx"],
                reply: .failure(status: 2, stderr: "Error: Unknown device type.")
            )
        }
        XCTAssertEqual(
            problems,
            [
                "the kernel cannot make VXLAN devices (Error: Unknown device type.): modprobe vxlan (kernel option "
                    + "CONFIG_VXLAN); in a container, load it on the host",
                "raw ICMP sockets cannot be opened",
            ]
        )
        XCTAssertEqual(commands.last, ["ip", "netns", "del", "nlcheckt"])
    }

    func testNoNamespacesStopsTheKernelChecks() async {
        let (problems, commands) = await check { runner in
            let said = "mount --make-shared /run/netns failed: Operation not permitted"
            runner.on(["ip", "netns", "add", "nlcheckt"], reply: .failure(status: 1, stderr: said))
        }
        XCTAssertEqual(
            problems,
            [
                "network namespaces cannot be created (mount --make-shared /run/netns failed: Operation not permitted): "
                    + "the kernel needs CONFIG_NET_NS, and a container needs CAP_SYS_ADMIN"
            ]
        )
        XCTAssertEqual(commands, [["ip", "netns", "add", "nlcheckt"]])
    }

    /// On this machine, for real: as root with iproute2 everything the demo needs is there (CI's machines are
    /// such machines; elsewhere the test skips).
    func testThisMachine() async throws {
        guard geteuid() == 0, LabPrerequisites.onPath("ip") != nil else {
            if LabRequirement.isRequired { return XCTFail("NETLEASE_REQUIRE_NETNS=1 but not root or no ip") }
            throw XCTSkip("needs root and iproute2")
        }
        let problems = await LabPrerequisites().problems()
        XCTAssertEqual(problems, [])
    }
}
