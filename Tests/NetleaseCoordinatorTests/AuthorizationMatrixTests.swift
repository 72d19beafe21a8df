import Foundation
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
import XCTest

/// Every verb × every credential (none, reader, admin, the host credential of the host a request names, that of
/// another host, a revoked one): the reply code of each is pinned, and nothing a refused request names has changed
/// afterwards (networks, hosts, leases and credentials compared line for line through an admin connection).
final class AuthorizationMatrixTests: XCTestCase {
    var harness: CoordinatorHarness!
    var epoch = ""
    /// Host credentials of h1 and h2 (both joined, each holding a lease), and of h3, revoked.
    var credentials: [String: HostCredential] = [:]

    override func setUp() async throws {
        harness = try await CoordinatorHarness.start()
        let admin = try authenticated("test-secret")
        XCTAssertTrue(try send(admin, "NETWORK-CREATE name=n1 subnet=172.30.0.0/24").hasPrefix("OK"))
        let joined = try send(admin, "JOIN host=h1 underlay=10.9.0.1 networks=n1", records: true)
        epoch = try XCTUnwrap(joined.split(separator: " ").first { $0.hasPrefix("epoch=") }).dropFirst(6).description
        XCTAssertTrue(try send(admin, "ACQUIRE network=n1 owner=o1 host=h1 epoch=\(epoch)").hasPrefix("OK"))
        XCTAssertTrue(try send(admin, "RESERVE network=n1 address=172.30.0.200").hasPrefix("OK"))
        let other = try send(admin, "JOIN host=h2 underlay=10.9.0.2 networks=n1", records: true)
        let otherEpoch = try XCTUnwrap(other.split(separator: " ").first { $0.hasPrefix("epoch=") }).dropFirst(6)
        XCTAssertTrue(try send(admin, "ACQUIRE network=n1 owner=o9 host=h2 epoch=\(otherEpoch)").hasPrefix("OK"))
        for host in ["h1", "h2", "h3"] {
            let credential = try HostCredential.generate(for: host)
            credentials[host] = credential
            let hash = SecretHash(hashing: credential.text).stored
            XCTAssertTrue(try send(admin, "HOST-CREDENTIAL-SET host=\(host) hash=\(hash)").hasPrefix("OK host=\(host)"))
        }
        XCTAssertTrue(try send(admin, "HOST-CREDENTIAL-REVOKE host=h3").hasPrefix("OK host=h3 revoked=1"))
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
            ("HOST-CREDENTIAL-SET", "HOST-CREDENTIAL-SET host=h4 hash=sha256:00:" + String(repeating: "ab", count: 32)),
            ("HOST-CREDENTIAL-REVOKE", "HOST-CREDENTIAL-REVOKE host=h4"),
            ("HOST-CREDENTIAL-LIST", "HOST-CREDENTIAL-LIST"),
        ]
    }

    static let readerVerbs: Set = ["PING", "NETWORK-LIST", "NETWORK-SHOW", "HOST-LIST", "LEASE-LIST", "WATCH", "STATS"]

    /// One valid request per verb as host h1's agent sends it: every host field names h1, with its epoch. JOIN last:
    /// it starts a new epoch.
    var hostRequests: [(verb: String, line: String)] {
        requests.filter { $0.verb != "JOIN" }.map { request in
            switch request.verb {
            case "ACQUIRE": (request.verb, "ACQUIRE network=n1 owner=o2 host=h1 epoch=\(epoch)")
            case "RELEASE": (request.verb, "RELEASE network=n1 owner=o1 host=h1 epoch=\(epoch)")
            case "LEASE-LIST": (request.verb, "LEASE-LIST host=h1")
            default: request
            }
        } + [("JOIN", "JOIN host=h1 underlay=10.9.0.1 networks=n1")]
    }

    /// What a host credential may do for its own host.
    static let hostVerbs: Set = [
        "PING", "NETWORK-LIST", "NETWORK-SHOW", "HOST-LIST", "LEASE-LIST", "WATCH", "JOIN", "HEARTBEAT", "ACQUIRE",
        "RELEASE", "REPORT-CONFLICT", "RECONCILE",
    ]
    /// What it may do whatever host a request names: read.
    static let hostReadVerbs: Set = ["PING", "NETWORK-LIST", "NETWORK-SHOW", "HOST-LIST", "WATCH"]

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

    func testAHostCredentialActsOnlyAsItsOwnHost() throws {
        for (verb, line) in hostRequests {
            let before = try state()
            let client = try authenticated(credentials["h1"]!.text, role: "host host=h1")
            let reply = try send(client, line, records: verb.hasSuffix("-LIST") || verb == "WATCH")
            if Self.hostVerbs.contains(verb) {
                XCTAssertTrue(reply.hasPrefix("OK"), "h1's credential, \(verb): \(reply)")
            } else {
                XCTAssertEqual(code(reply), "forbidden", "h1's credential, \(verb): \(reply)")
                XCTAssertEqual(try state(), before, "state changed after h1's refused \(verb)")
            }
        }
    }

    func testAnotherHostsCredentialMayOnlyRead() throws {
        let before = try state()
        for (verb, line) in hostRequests {
            let client = try authenticated(credentials["h2"]!.text, role: "host host=h2")
            let reply = try send(client, line, records: verb.hasSuffix("-LIST") || verb == "WATCH")
            if Self.hostReadVerbs.contains(verb) {
                XCTAssertTrue(reply.hasPrefix("OK"), "h2's credential, \(verb): \(reply)")
            } else {
                XCTAssertEqual(code(reply), "forbidden", "h2's credential, \(verb): \(reply)")
            }
            XCTAssertEqual(try state(), before, "state changed after h2's \(verb) naming h1")
        }
    }

    func testARevokedCredentialAuthenticatesNothing() throws {
        let before = try state()
        for (verb, line) in hostRequests.map({ ($0.verb, $0.line.replacingOccurrences(of: "h1", with: "h3")) }) {
            let client = try RawLineClient(port: harness.endpoint.port)
            _ = try client.readLine()
            XCTAssertEqual(code(try send(client, "AUTH secret=\(credentials["h3"]!.text)")), "auth-failed")
            let reply = try send(client, line)
            if verb == "PING" {
                XCTAssertEqual(reply, "OK pong=1")
            } else {
                XCTAssertEqual(code(reply), "auth-required", "revoked credential, \(verb): \(reply)")
            }
            XCTAssertEqual(try state(), before, "state changed after a revoked credential's \(verb)")
        }
    }

    /// The refusals inside the host's own authority: no claim, a stale epoch, another host's lease by address or
    /// owner. Listings show the host's own leases and every bridge address, nothing of other hosts' containers.
    func testAHostCredentialNeitherClaimsOldEpochsNorTouchesOtherHostsLeases() throws {
        let before = try state()
        let client = try authenticated(credentials["h1"]!.text, role: "host host=h1")
        let cases: [(line: String, code: String)] = [
            ("ACQUIRE network=n1 owner=o5", "forbidden"),
            ("ACQUIRE network=n1 owner=o5 host=h1", "forbidden"),
            ("ACQUIRE network=n1 owner=o5 host=h1 epoch=\(Int(epoch)! - 1)", "stale-epoch"),
            ("ACQUIRE network=n1 owner=o9 host=h1 epoch=\(epoch)", "conflict"),
            ("RELEASE network=n1 owner=o9", "forbidden"),
            ("RELEASE network=n1 owner=o9 host=h1 epoch=\(epoch)", "conflict"),
            ("RELEASE network=n1 address=172.30.0.200 host=h1 epoch=\(epoch)", "conflict"),
            ("HEARTBEAT host=h2 epoch=1", "forbidden"),
            ("LEASE-LIST host=h2", "forbidden"),
            ("LEASE-LIST host=", "forbidden"),
        ]
        for (line, expected) in cases {
            XCTAssertEqual(code(try send(client, line)), expected, line)
            XCTAssertEqual(try state(), before, "state changed after \(line)")
        }
        try client.send("LEASE-LIST\n")
        let head = try XCTUnwrap(try client.readLine())
        let listed = try client.readLines(Int(head.dropFirst(9).prefix { $0.isNumber }) ?? 0)
        XCTAssertTrue(listed.contains { $0.contains("owner=o1") }, "its own lease is missing: \(listed)")
        XCTAssertFalse(listed.contains { $0.contains("owner=o9") }, "another host's lease was listed: \(listed)")
        XCTAssertFalse(listed.contains { $0.contains("172.30.0.200") }, "a reservation was listed: \(listed)")
        XCTAssertEqual(listed.filter { $0.contains("owner=bridge:") }.count, 2, "bridges: \(listed)")
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
        for verb in ["NETWORK-LIST", "HOST-LIST", "LEASE-LIST", "HOST-CREDENTIAL-LIST"] {
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
