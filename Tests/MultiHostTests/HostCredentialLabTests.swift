import Foundation
import HostNetwork
import NetleaseCore
import XCTest

/// Agents run with host credentials (as `LabCluster` starts them, like the demo and deploy/): the real CLI with a
/// host's credential may act only as that host, and revoking the credential cuts its agent off — the coordinator
/// closes both of its connections and the host can no longer lease.
final class HostCredentialLabTests: LabTestCase {
    func testAHostsCredentialActsOnlyAsItsHostAndRevokingItCutsTheAgentOff() async throws {
        try await cluster.startCoordinator()
        try await cluster.startAgent(1)
        try await cluster.startAgent(2)
        _ = try await cluster.attachContainer(host: 1, 1)
        _ = try await cluster.attachContainer(host: 2, 1)
        let before = try await cluster.leasesJSON()

        // host1's credential, from host1's namespace, as a stolen credential would be used.
        for (arguments, what) in [
            (["network", "delete", cluster.network], "delete the network"),
            (["host", "remove", cluster.hostName(2)], "remove another host"),
            (["lease", "release", "--network", cluster.network, "--owner", "h2-c1"], "release another host's lease"),
            (["host", "credential", "revoke", cluster.hostName(2)], "revoke another host's credential"),
        ] {
            let refused = try await asHost(1, arguments)
            XCTAssertNotEqual(refused.status, 0, "host1's credential could \(what)")
            XCTAssertTrue(refused.stderr.contains("forbidden"), "\(what): \(refused.stderr)")
        }
        let after = try await cluster.leasesJSON()
        XCTAssertEqual(after.count, before.count, "a refused request changed the leases")
        let listed = try await asHost(1, ["leases", "--network", cluster.network])
        XCTAssertTrue(listed.stdout.contains("h1-c1"), listed.stdout)
        XCTAssertFalse(listed.stdout.contains("h2-c1"), "host1's credential lists host2's containers")

        let revoked = try await cluster.admin(["host", "credential", "revoke", cluster.hostName(1), "--json"])
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(revoked.utf8)) as? [String: Any])
        XCTAssertEqual(result["revoked"] as? Bool, true)
        XCTAssertEqual(result["closed"] as? Int, 2, "the agent's control and watch connections: \(revoked)")
        let cutOff = try await run(
            lab.hostNamespace(1),
            [
                cluster.binary, "attach", "--socket", cluster.socket(host: 1), "--network", cluster.network,
                "--netns", cluster.containerNamespace(host: 1, 2), "--owner", "h1-c2",
            ],
            namespace: cluster.containerNamespace(host: 1, 2)
        )
        XCTAssertNotEqual(cutOff.status, 0, "host1 leased after its credential was revoked: \(cutOff.stdout)")
        let final = try await cluster.leasesJSON()
        XCTAssertFalse(final.contains { $0["owner"] as? String == "h1-c2" }, "a lease was granted to host1")
        // host2 is untouched.
        _ = try await cluster.attachContainer(host: 2, 2)
    }

    /// The CLI run in host `index`'s namespace with that host's credential; failures are returned, not thrown.
    private func asHost(_ index: Int, _ arguments: [String]) async throws -> CommandResult {
        try await run(
            lab.hostNamespace(index),
            [cluster.binary] + arguments + [
                "--coordinator", cluster.coordinatorAddress, "--secret-file", cluster.credentialFile(host: index),
            ]
        )
    }

    private func run(
        _ namespace: String,
        _ argv: [String],
        namespace container: String? = nil
    ) async throws
        -> CommandResult
    {
        if let container { try await lab.addNamespace(container) }
        do {
            return try await lab.run(namespace, argv)
        } catch let error as HostNetworkError {
            return CommandResult(stderr: "\(error)", status: 1)
        }
    }
}
