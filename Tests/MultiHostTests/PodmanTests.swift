import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import NetleaseTesting
import XCTest

/// podman (Debian's 4.3.1 with its CNI backend) on two lab hosts, each with its agent, using the conflist that
/// `netlease cni-config` prints: `podman run --network demo` gets cluster-unique addresses that reach each other
/// across hosts, and `podman rm` releases them.
final class PodmanTests: LabTestCase {
    private var podmen: [Int: LabPodman] = [:]

    override func setUp() async throws {
        // Before the lab exists: a test that stops here leaves nothing to remove.
        if let problem = LabPodman.capabilityProblem() {
            if LabRequirement.isRequired {
                XCTFail("NETLEASE_REQUIRE_NETNS=1 but the podman tests cannot run: \(problem)")
                throw NetleaseError(.unavailable, problem)
            }
            throw XCTSkip("podman tests skipped: \(problem)")
        }
        try await super.setUp()
    }

    override func tearDown() async throws {
        // Containers go through podman while the agents still run, so their addresses are released.
        for (host, podman) in podmen {
            let left = await podman.removeEverything()
            XCTAssertEqual(left, [], "podman of host \(host) left network namespaces behind")
        }
        for (host, podman) in podmen {
            XCTAssertEqual(podman.leftoverProcesses(), [], "podman of host \(host) left processes behind")
            XCTAssertEqual(podman.leftoverMounts(), [], "podman of host \(host) left mounts behind")
        }
        podmen = [:]
        try await super.tearDown()
    }

    /// Host `index`'s agent, then podman with the conflist `netlease cni-config` prints there.
    private func startPodmanHost(_ index: Int) async throws -> LabPodman {
        try await cluster.startAgent(index)
        let conflist = try await lab.run(
            lab.hostNamespace(index),
            [cluster.binary, "cni-config", "demo", "--socket", cluster.socket(host: index)]
        ).stdout
        let podman = try LabPodman(
            lab: lab,
            host: index,
            conflist: Data(conflist.utf8),
            plugin: try Executables.path("netlease-cni")
        )
        podmen[index] = podman
        try await podman.importBusybox()
        return podman
    }

    /// The targets a container cannot ping (each tried three times: a fresh path may lose its first packet).
    private func unreachable(
        from container: String,
        on podman: LabPodman,
        _ targets: [IPv4Address]
    ) async throws -> [String] {
        let output = try await podman.podman(
            ["exec", container, "sh", "-c", Self.unreachableScript, "sh"] + targets.map(\.description)
        ).stdout
        return output.split(separator: "\n").map(String.init)
    }

    func testPodmanRunOnTwoHostsGetsUniqueReachableAddressesAndRmReleasesThem() async throws {
        try await cluster.startCoordinator()
        let (first, second) = try await (startPodmanHost(1), startPodmanHost(2))
        let daemons = [1: first, 2: second]
        var containers: [String: (host: Int, address: IPv4Address)] = [:]
        for (host, podman) in daemons.sorted(by: { $0.key < $1.key }) {
            for number in 1...3 {
                let name = "h\(host)-p\(number)"
                containers[name] = (host, try await podman.run(name, network: "demo"))
            }
        }
        let addresses = containers.values.map(\.address)
        XCTAssertEqual(Set(addresses).count, 6, "an address was handed out twice: \(containers)")
        XCTAssertTrue(addresses.allSatisfy { cluster.subnet.contains($0) }, "\(addresses)")

        // Every address is a lease of this network, owned by the CNI attachment, on the container's host.
        let leases = try await cluster.leasesJSON(["--state", "active"])
        for (name, container) in containers {
            let lease = leases.first { $0["address"] as? String == container.address.description }
            XCTAssertEqual(lease?["host"] as? String, cluster.hostName(container.host), name)
            let owner = lease?["owner"] as? String ?? ""
            XCTAssertTrue(owner.hasPrefix("cni:demo/") && owner.hasSuffix("/eth0"), "\(name): \(owner)")
        }

        for (host, podman) in daemons {
            let others = containers.values.filter { $0.host != host }.map(\.address)
            let failed = try await unreachable(from: "h\(host)-p1", on: podman, others)
            XCTAssertEqual(failed, [], "from host\(host): unreachable \(failed)")
        }
        let mtu = try await first.podman(["exec", "h1-p1", "cat", "/sys/class/net/eth0/mtu"]).stdout
        XCTAssertEqual(mtu.trimmingCharacters(in: .whitespacesAndNewlines), "1450", "containers get the bridge's MTU")

        // podman run --ip asks for one address.
        let wanted = IPv4Address(172, 30, 50, 5)
        let pinned = try await first.run("h1-ip", network: "demo", ip: wanted)
        XCTAssertEqual(pinned, wanted)

        // podman rm releases the lease: the address cools down.
        let removed = try XCTUnwrap(containers["h2-p3"])
        try await second.podman(["rm", "--force", "--time", "0", "h2-p3"])
        let cooling = try await leaseAddresses(state: "cooldown")
        XCTAssertTrue(cooling.values.contains(removed.address.description), "podman rm did not release it")
        let active = try await leaseAddresses(state: "active")
        XCTAssertFalse(active.values.contains(removed.address.description))
    }
}
