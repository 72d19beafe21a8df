import Foundation
import NetleaseCore
import NetleaseTesting
import XCTest

/// Invariant 3's real case: a client's request reached the coordinator, which committed and answered, but the
/// coordinator died (`SIGKILL`) before the client read the reply. After the restart the client retries: exactly
/// one lease, the same address; a retried release is harmless.
final class LostReplyTests: XCTestCase {
    var directory: String!
    var coordinator: CoordinatorProcess?

    override func setUp() {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("netlease-lost-\(UUID().uuidString)")
            .path
    }

    override func tearDown() {
        coordinator?.cleanUp()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func client(_ coordinator: CoordinatorProcess) throws -> RawLineClient {
        let client = try RawLineClient(port: coordinator.endpoint.port)
        _ = try client.readLine()
        try client.send("AUTH secret=\(try coordinator.secret)\n")
        XCTAssertEqual(try client.readLine(), "OK role=admin")
        return client
    }

    private func field(_ name: String, _ line: String) -> String? {
        line.split(separator: " ").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    private func restart() async throws -> CoordinatorProcess {
        coordinator?.kill9()
        let started = try await CoordinatorProcess.start(directory: directory)
        coordinator = started
        return started
    }

    /// The owner's leases, or (without an owner) the cooldown records.
    private func leases(owner: String? = nil, on coordinator: CoordinatorProcess) throws -> [String] {
        let admin = try client(coordinator)
        try admin.send("LEASE-LIST network=n1\(owner.map { " owner=\($0)" } ?? " state=cooldown")\n")
        let head = try XCTUnwrap(try admin.readLine())
        return try admin.readLines(Int(field("count", head) ?? "0") ?? 0)
    }

    func testAnAcquireWhoseReplyWasLostIsRetriedToTheSameSingleLease() async throws {
        var coordinator = try await restart()
        let admin = try client(coordinator)
        try admin.send("NETWORK-CREATE name=n1 subnet=172.30.0.0/24\n")
        XCTAssertEqual(try admin.readLine()?.hasPrefix("OK"), true)

        let requester = try client(coordinator)
        try requester.send("ACQUIRE network=n1 owner=web-1\n")
        // The reply is on its way (so the change was committed) but not read when the coordinator dies.
        XCTAssertTrue(requester.waitUntilReadable(), "no reply to ACQUIRE")
        coordinator.kill9()
        let lost = try XCTUnwrap(try requester.readLine(), "the reply was sent before the kill")
        let address = try XCTUnwrap(field("address", lost), lost)

        coordinator = try await restart()
        let retry = try client(coordinator)
        try retry.send("ACQUIRE network=n1 owner=web-1\n")
        let again = try XCTUnwrap(try retry.readLine())
        XCTAssertEqual(field("address", again), address, "the retry got another address: \(again)")
        XCTAssertEqual(try leases(owner: "web-1", on: coordinator).count, 1)
    }

    func testAReleaseWhoseReplyWasLostIsHarmlessToRetry() async throws {
        var coordinator = try await restart()
        let admin = try client(coordinator)
        try admin.send("NETWORK-CREATE name=n1 subnet=172.30.0.0/24\n")
        _ = try admin.readLine()
        try admin.send("ACQUIRE network=n1 owner=web-1\n")
        let acquired = try XCTUnwrap(try admin.readLine())
        try admin.send("ACQUIRE network=n1 owner=web-2\n")
        let other = try XCTUnwrap(try admin.readLine())

        try admin.send("RELEASE network=n1 owner=web-1\n")
        XCTAssertTrue(admin.waitUntilReadable(), "no reply to RELEASE")
        coordinator.kill9()
        XCTAssertEqual(field("released", try XCTUnwrap(try admin.readLine())), "1")

        coordinator = try await restart()
        let retry = try client(coordinator)
        try retry.send("RELEASE network=n1 owner=web-1\n")
        XCTAssertEqual(try retry.readLine(), "OK released=0")
        XCTAssertEqual(try leases(owner: "web-1", on: coordinator), [], "web-1 holds nothing any more")
        let cooling = try leases(on: coordinator).filter { field("address", $0) == field("address", acquired) }
        XCTAssertEqual(cooling.map { field("state", $0) }, ["cooldown"], "the released address rests in cooldown")
        XCTAssertEqual(
            try leases(owner: "web-2", on: coordinator).compactMap { field("address", $0) },
            [field("address", other)].compactMap { $0 },
            "the other lease must be untouched"
        )
    }

    /// The kill lands at an unknown point (before or after the commit): either way the retry ends with exactly
    /// one lease for the owner.
    func testAnAcquireKilledAtAnUnknownPointEndsWithExactlyOneLease() async throws {
        var coordinator = try await restart()
        let admin = try client(coordinator)
        try admin.send("NETWORK-CREATE name=n1 subnet=172.30.0.0/24\n")
        _ = try admin.readLine()
        for round in 0..<5 {
            let requester = try client(coordinator)
            try requester.send("ACQUIRE network=n1 owner=db-\(round)\n")
            coordinator.kill9()
            coordinator = try await restart()
            let retry = try client(coordinator)
            try retry.send("ACQUIRE network=n1 owner=db-\(round)\n")
            let reply = try XCTUnwrap(try retry.readLine())
            XCTAssertNotNil(field("address", reply), reply)
            let listed = try leases(owner: "db-\(round)", on: coordinator)
            XCTAssertEqual(listed.count, 1)
            XCTAssertEqual(listed.first.flatMap { field("address", $0) }, field("address", reply))
        }
    }
}
