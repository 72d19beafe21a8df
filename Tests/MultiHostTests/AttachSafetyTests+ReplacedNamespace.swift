import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import XCTest

extension AttachSafetyTests {
    /// A container's record names its namespace by path, and paths are reused: `ip netns del web1; ip netns add
    /// web1`, or a PID taken by another process. What sits at the path later is not the container, and the agent
    /// must never plumb the container's address and default route into it.
    func testANamespaceReplacedUnderTheSameNameGetsNoInterfaceAfterARestart() async throws {
        try await cluster.startCoordinator()
        try await cluster.startAgent(1, extraArguments: AttachSafetyTests.probeArguments)
        let address = try await cluster.attachContainer(host: 1, 1)
        let container = cluster.containerNamespace(host: 1, 1)
        let plumbed = try await lab.links(in: container)
        XCTAssertNotNil(plumbed["eth0"], "the container was not plumbed")

        XCTAssertEqual(cluster.stopAgent(1), 0)
        // The container ends and an unrelated namespace takes its name (the lab still deletes it at the end).
        let system = ProcessCommandRunner()
        try await system.run(["ip", "netns", "del", container])
        let hostEndGone = await eventually(.seconds(10)) {
            let ports = try? await self.lab.run(
                self.lab.hostNamespace(1),
                ["ip", "-o", "link", "show", "master", "nl-demo", "type", "veth"]
            )
            return ports?.stdout.isEmpty == true
        }
        XCTAssertTrue(hostEndGone, "the old container's veth outlived its namespace")
        try await system.run(["ip", "netns", "add", container])

        try await cluster.startAgent(1, createHost: false, extraArguments: AttachSafetyTests.probeArguments)
        let links = try await lab.links(in: container)
        XCTAssertEqual(Set(links.keys), ["lo"], "the new namespace got the old container's interface")
        let routes = try await lab.run(container, ["ip", "route", "show"]).stdout
        XCTAssertEqual(routes, "", "the new namespace got routes")
        let owners = try await leaseAddresses()
        XCTAssertEqual(owners["h1-c1"], address.description, "the lease is the runtime's to release (DETACH)")
        let doctor = try await lab.run(
            lab.hostNamespace(1),
            ["sh", "-c", "\"$0\" doctor --socket \"$1\"; echo exit=$?", cluster.binary, cluster.socket(host: 1)]
        ).stdout
        XCTAssertTrue(doctor.contains("h1-c1") && !doctor.contains("exit=0"), doctor)
    }
}
