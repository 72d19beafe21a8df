import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

/// Host credentials over the wire: revoking or replacing one closes the connections that authenticated with it
/// (a watching agent included) while others keep working, and a restarted coordinator honours and refuses exactly
/// what it did before.
final class HostCredentialTests: XCTestCase {
    var harness: CoordinatorHarness!
    var directory: URL!

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("netlease-cred-\(UUID().uuidString)")
        harness = try await CoordinatorHarness.start(directory: directory)
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func testRevokingClosesTheConnectionsThatUseTheCredentialAndNoOthers() async throws {
        let h1 = try await issue("h1")
        let h2 = try await issue("h2")
        let working = try authenticated(h1, role: "host host=h1")
        let watching = try authenticated(h1, role: "host host=h1")
        try watching.send("WATCH\n")
        let head = try XCTUnwrap(try watching.readLine())
        XCTAssertTrue(head.hasPrefix("OK count="), head)
        _ = try watching.readLines(Int(head.dropFirst(9).prefix { $0.isNumber }) ?? 0)
        let bystander = try authenticated(h2, role: "host host=h2")

        let result = try await harness.connect { try await $0.revokeHostCredential(host: "h1") }
        XCTAssertTrue(result.revoked)
        XCTAssertEqual(result.closed, 2)
        XCTAssertTrue(working.isClosedByPeer(), "a connection of the revoked credential stayed open")
        XCTAssertTrue(watching.isClosedByPeer(), "a watch stream of the revoked credential stayed open")
        try bystander.send("PING\n")
        XCTAssertEqual(try bystander.readLine(), "OK pong=1", "another host's connection was closed")

        let again = try RawLineClient(port: harness.endpoint.port)
        _ = try again.readLine()
        try again.send("AUTH secret=\(h1.text)\n")
        XCTAssertEqual(try again.readLine()?.hasPrefix("ERR auth-failed"), true)
    }

    func testIssuingAgainReplacesTheCredentialAndClosesItsConnections() async throws {
        let old = try await issue("h1")
        let connection = try authenticated(old, role: "host host=h1")
        let new = try await issue("h1", expectReplaced: true, expectClosed: 1)
        XCTAssertTrue(connection.isClosedByPeer(), "a connection of the replaced credential stayed open")
        let refused = try RawLineClient(port: harness.endpoint.port)
        _ = try refused.readLine()
        try refused.send("AUTH secret=\(old.text)\n")
        XCTAssertEqual(try refused.readLine()?.hasPrefix("ERR auth-failed"), true, "the replaced one still works")
        _ = try authenticated(new, role: "host host=h1")
    }

    func testARestartedCoordinatorHonoursAndRefusesTheSameCredentials() async throws {
        let kept = try await issue("h1")
        let revoked = try await issue("h2")
        try await harness.connect { _ = try await $0.revokeHostCredential(host: "h2") }
        let forged = try HostCredential.generate(for: "h1")
        for round in 0..<2 {
            await harness.stop(removeFiles: false)
            harness = try await CoordinatorHarness.start(directory: directory)
            _ = try authenticated(kept, role: "host host=h1")
            for refused in [revoked, forged] {
                let client = try RawLineClient(port: harness.endpoint.port)
                _ = try client.readLine()
                try client.send("AUTH secret=\(refused.text)\n")
                XCTAssertEqual(try client.readLine()?.hasPrefix("ERR auth-failed"), true, "round \(round)")
            }
        }
    }

    /// `host remove` retires the host for good: its credential is revoked with it and the connections that used it
    /// are closed, so the removed host cannot come straight back as itself — not after a restart either. A host
    /// with only a credential is removed by revoking it; with neither, `not-found`.
    func testRemovingAHostRevokesItsCredentialAndClosesItsConnections() async throws {
        try await harness.connect { admin in
            _ = try await admin.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
        }
        let h1 = try await issue("h1")
        let h2 = try await issue("h2")
        let agent = try authenticated(h1, role: "host host=h1")
        try agent.send("JOIN host=h1 underlay=10.0.0.1 networks=prod\n")
        let joined = try XCTUnwrap(try agent.readLine())
        XCTAssertTrue(joined.hasPrefix("OK "), joined)
        _ = try agent.readLines(
            Int(joined.split(separator: " ").first { $0.hasPrefix("count=") }?.dropFirst(6) ?? "0") ?? 0
        )
        let bystander = try authenticated(h2, role: "host host=h2")

        let removal = try await harness.connect { try await $0.removeHost("h1") }
        XCTAssertEqual(
            removal,
            HostRemoval(released: 1, revoked: true, closed: 1),
            "the bridge address, h1's one connection"
        )
        XCTAssertTrue(agent.isClosedByPeer(), "the removed host's connection stayed open")
        try bystander.send("PING\n")
        XCTAssertEqual(try bystander.readLine(), "OK pong=1", "another host's connection was closed")
        try assertRefused(h1, "the removed host's credential")
        let hosts = try await harness.connect { try await $0.hosts() }
        XCTAssertEqual(hosts.map(\.name), [], "h1 is gone")
        let credentials = try await harness.connect { try await $0.hostCredentials() }
        XCTAssertEqual(credentials.map(\.host), ["h2"])

        // Issued, never joined: removing it revokes the credential; then nothing is left to remove.
        let removedCredentialOnly = try await harness.connect { try await $0.removeHost("h2") }
        XCTAssertEqual(removedCredentialOnly, HostRemoval(released: 0, revoked: true, closed: 1))
        try assertRefused(h2, "the credential of a host removed before it joined")
        await expectNetleaseError(.notFound, "removing h1 again") {
            try await self.harness.connect { _ = try await $0.removeHost("h1") }
        }

        await harness.stop(removeFiles: false)
        harness = try await CoordinatorHarness.start(directory: directory)
        try assertRefused(h1, "the removed host's credential after a restart")
        try assertRefused(h2, "the removed credential-only host's after a restart")
        let afterRestart = try await harness.connect { try await $0.hostCredentials() }
        XCTAssertEqual(afterRestart.map(\.host), [])
    }

    /// A RECONCILE reply to a host credential names the address and the host that holds it, not the holder's
    /// owner: LEASE-LIST does not show another host's leases to it either.
    func testAReconcileReplyDoesNotShowAnotherHostsOwner() async throws {
        let address = try await harness.connect { admin in
            _ = try await admin.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
            return try await admin.acquire(
                AcquireRequest(network: "prod", owner: "payroll-db", claim: HostClaim(host: "h2"))
            ).address
        }
        let h1 = try await issue("h1")
        let agent = try authenticated(h1, role: "host host=h1")
        try agent.send("JOIN host=h1 underlay=10.0.0.1 networks=prod\n")
        let joined = try XCTUnwrap(try agent.readLine())
        let epoch = try XCTUnwrap(joined.split(separator: " ").first { $0.hasPrefix("epoch=") }?.dropFirst(6))
        _ = try agent.readLines(
            Int(joined.split(separator: " ").first { $0.hasPrefix("count=") }?.dropFirst(6) ?? "0") ?? 0
        )
        try agent.send("RECONCILE network=prod owner=mine address=\(address) host=h1 epoch=\(epoch)\n")
        let reply = try XCTUnwrap(try agent.readLine())
        XCTAssertTrue(reply.hasPrefix("OK "), reply)
        XCTAssertTrue(reply.contains("status=taken"), reply)
        XCTAssertTrue(reply.contains("host=h2"), reply)
        XCTAssertFalse(reply.contains("payroll-db"), "another host's owner shown to h1: \(reply)")
    }

    // MARK: helpers

    /// Issues a credential for `host` as the CLI does: generated here, only its hash sent.
    private func issue(
        _ host: String,
        expectReplaced: Bool = false,
        expectClosed: Int = 0
    ) async throws -> HostCredential {
        let credential = try HostCredential.generate(for: host)
        let hash = SecretHash(hashing: credential.text).stored
        let result = try await harness.connect { try await $0.setHostCredential(host: host, hash: hash) }
        XCTAssertEqual(result.replaced, expectReplaced)
        XCTAssertEqual(result.closed, expectClosed)
        return credential
    }

    /// Asserts that AUTH with `credential` now gets `auth-failed`.
    private func assertRefused(_ credential: HostCredential, _ what: String) throws {
        let client = try RawLineClient(port: harness.endpoint.port)
        _ = try client.readLine()
        try client.send("AUTH secret=\(credential.text)\n")
        let reply = try client.readLine() ?? ""
        XCTAssertTrue(reply.hasPrefix("ERR auth-failed"), "\(what): \(reply)")
    }

    private func authenticated(_ credential: HostCredential, role: String) throws -> RawLineClient {
        let client = try RawLineClient(port: harness.endpoint.port)
        _ = try client.readLine()
        try client.send("AUTH secret=\(credential.text)\n")
        XCTAssertEqual(try client.readLine(), "OK role=\(role)")
        return client
    }
}
