import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
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

    private func authenticated(_ credential: HostCredential, role: String) throws -> RawLineClient {
        let client = try RawLineClient(port: harness.endpoint.port)
        _ = try client.readLine()
        try client.send("AUTH secret=\(credential.text)\n")
        XCTAssertEqual(try client.readLine(), "OK role=\(role)")
        return client
    }
}
