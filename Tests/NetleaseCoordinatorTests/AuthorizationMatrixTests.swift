import Foundation
import NetleaseTesting
import XCTest

/// Every verb × every credential: the reply code of each is pinned, and nothing a refused request names has
/// changed afterwards (networks, hosts, leases compared line for line through an admin connection).
final class AuthorizationMatrixTests: XCTestCase {
    var harness: CoordinatorHarness!
    var epoch = ""

    override func setUp() async throws {
        harness = try await CoordinatorHarness.start()
        let admin = try authenticated("test-secret")
        XCTAssertTrue(try send(admin, "NETWORK-CREATE name=n1 subnet=172.30.0.0/24").hasPrefix("OK"))
        let joined = try send(admin, "JOIN host=h1 underlay=10.9.0.1 networks=n1", records: true)
        epoch = try XCTUnwrap(joined.split(separator: " ").first { $0.hasPrefix("epoch=") }).dropFirst(6).description
        XCTAssertTrue(try send(admin, "ACQUIRE network=n1 owner=o1 host=h1 epoch=\(epoch)").hasPrefix("OK"))
        XCTAssertTrue(try send(admin, "RESERVE network=n1 address=172.30.0.200").hasPrefix("OK"))
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    /// One valid request line per verb (besides AUTH), against the state `setUp` made.
    var requests: [(verb: String, line: String)] {
        [
            ("PING", "PING"),
            ("NETWORK-CREATE", "NETWORK-CREATE name=n2 subnet=172.30.1.0/24"),
            ("NETWORK-LIST", "NETWORK-LIST"),
            ("NETWORK-SHOW", "NETWORK-SHOW name=n1"),
            ("NETWORK-DELETE", "NETWORK-DELETE name=n1"),
            ("JOIN", "JOIN host=h2 underlay=10.9.0.2 networks=n1"),
            ("HEARTBEAT", "HEARTBEAT host=h1 epoch=\(epoch)"),
            ("HOST-LIST", "HOST-LIST"),
            ("HOST-REMOVE", "HOST-REMOVE host=h1"),
            ("ACQUIRE", "ACQUIRE network=n1 owner=o2"),
            ("RELEASE", "RELEASE network=n1 owner=o1"),
            ("RESERVE", "RESERVE network=n1 address=172.30.0.201"),
            ("UNRESERVE", "UNRESERVE network=n1 address=172.30.0.200"),
            (
                "REPORT-CONFLICT",
                "REPORT-CONFLICT network=n1 address=172.30.0.202 mac=02:00:00:00:00:01 host=h1 epoch=\(epoch)"
            ),
            ("LEASE-LIST", "LEASE-LIST"),
            ("RECONCILE", "RECONCILE network=n1 owner=o3 address=172.30.0.203 host=h1 epoch=\(epoch)"),
            ("WATCH", "WATCH"),
            ("BACKUP", "BACKUP"),
            ("STATS", "STATS"),
        ]
    }

    static let readerVerbs: Set = ["PING", "NETWORK-LIST", "NETWORK-SHOW", "HOST-LIST", "LEASE-LIST", "WATCH", "STATS"]

    func testWithoutCredentialsOnlyPingAuthAndQuitAreAnswered() throws {
        let before = try state()
        for (verb, line) in requests {
            let client = try RawLineClient(port: harness.endpoint.port)
            XCTAssertEqual(try client.readLine()?.hasPrefix("NETLEASE version=1 auth=required"), true)
            let reply = try send(client, line)
            if verb == "PING" {
                XCTAssertEqual(reply, "OK pong=1")
            } else {
                XCTAssertEqual(code(reply), "auth-required", "\(verb) without AUTH: \(reply)")
            }
            XCTAssertEqual(try state(), before, "state changed after an unauthenticated \(verb)")
        }
        let client = try RawLineClient(port: harness.endpoint.port)
        _ = try client.readLine()
        XCTAssertEqual(try send(client, "QUIT"), "OK bye=1")
    }

    func testTheReaderMayOnlyList() throws {
        let before = try state()
        for (verb, line) in requests {
            let client = try authenticated("reader-secret", role: "reader")
            let reply = try send(client, line, records: verb.hasSuffix("-LIST") || verb == "WATCH")
            if Self.readerVerbs.contains(verb) {
                XCTAssertTrue(reply.hasPrefix("OK"), "reader \(verb): \(reply)")
            } else {
                XCTAssertEqual(code(reply), "forbidden", "reader \(verb): \(reply)")
            }
            XCTAssertEqual(try state(), before, "state changed after the reader's \(verb)")
        }
    }

    func testTheAdminMayDoEverything() throws {
        // Destructive verbs last and on what the earlier ones made: n2 is empty, h1 goes after its last use.
        var ordered = requests.filter { $0.verb != "HOST-REMOVE" }.map { request in
            request.verb == "NETWORK-DELETE" ? (request.verb, "NETWORK-DELETE name=n2") : request
        }
        ordered += requests.filter { $0.verb == "HOST-REMOVE" }
        for (verb, line) in ordered {
            let client = try authenticated("test-secret")
            let reply = try send(client, line, records: verb.hasSuffix("-LIST") || verb == "WATCH")
            XCTAssertTrue(reply.hasPrefix("OK"), "admin \(verb): \(reply)")
        }
    }

    /// Empty, prefix, extended and over-long secrets, and the reader secret's prefix: each refused with its code,
    /// and the connection stays unable to change anything.
    func testWrongSecretsAreRefusedAndGrantNothing() throws {
        let before = try state()
        let cases: [(secret: String, code: String)] = [
            ("", "auth-failed"),
            ("test-secre", "auth-failed"),
            ("test-secret0", "auth-failed"),
            ("TEST-SECRET", "auth-failed"),
            ("reader-secre", "auth-failed"),
            (String(repeating: "test-secret", count: 600), "auth-failed"),
            (String(repeating: "test-secret", count: 800), "bad-request"),
        ]
        for (secret, expected) in cases {
            let client = try RawLineClient(port: harness.endpoint.port)
            _ = try client.readLine()
            let reply = try send(client, "AUTH secret=\(secret)")
            XCTAssertEqual(code(reply), expected, "AUTH with a \(secret.count)-byte secret: \(reply)")
            if expected == "auth-failed" {
                XCTAssertEqual(code(try send(client, "RELEASE network=n1 owner=o1")), "auth-required")
            } else {
                XCTAssertTrue(client.isClosedByPeer(), "a line over the limit must close the connection")
            }
            XCTAssertEqual(try state(), before)
        }
    }

    // MARK: helpers

    private func authenticated(_ secret: String, role: String = "admin") throws -> RawLineClient {
        let client = try RawLineClient(port: harness.endpoint.port)
        _ = try client.readLine()
        XCTAssertEqual(try send(client, "AUTH secret=\(secret)"), "OK role=\(role)")
        return client
    }

    /// Sends one line and returns its reply line; with `records`, also reads the records of a list reply.
    private func send(_ client: RawLineClient, _ line: String, records: Bool = false) throws -> String {
        try client.send(line + "\n")
        let reply = try XCTUnwrap(try client.readLine(), "no reply to \(line.prefix(60))")
        if reply.hasPrefix("OK count="),
            let count = Int(reply.dropFirst(9).prefix { $0.isNumber })
        {
            _ = try client.readLines(count)
        }
        return reply
    }

    private func code(_ reply: String) -> String {
        guard reply.hasPrefix("ERR ") else { return reply }
        return String(reply.dropFirst(4).prefix { $0 != " " })
    }

    /// Networks, hosts (without heartbeat times) and leases, as the admin lists them.
    private func state() throws -> [String] {
        let admin = try authenticated("test-secret")
        var lines: [String] = []
        for verb in ["NETWORK-LIST", "HOST-LIST", "LEASE-LIST"] {
            try admin.send(verb + "\n")
            let head = try XCTUnwrap(try admin.readLine())
            let count = Int(head.dropFirst(9).prefix { $0.isNumber }) ?? 0
            lines += try admin.readLines(count).map { line in
                line.split(separator: " ").filter { !$0.hasPrefix("last-heartbeat=") && !$0.hasPrefix("renewed=") }
                    .joined(separator: " ")
            }
        }
        return lines
    }
}
