import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

/// The client against peers that misbehave, its verbs against a real coordinator, and its search for the leader
/// among a refusing address, standbys that answer `not-leader` and a real coordinator.
final class NetleaseConnectionTests: XCTestCase {
    private var servers: [ScriptedServer] = []
    private var harness: CoordinatorHarness?

    override func tearDown() async throws {
        for server in servers { await server.stop() }
        servers = []
        await harness?.stop()
        harness = nil
    }

    private func scripted(greeting: String?, answer: ScriptedServer.Answer = .silence) async throws -> Endpoint {
        let server = try await ScriptedServer.tcp(greeting: greeting, answer: answer)
        servers.append(server)
        return Endpoint(host: "127.0.0.1", port: server.port)
    }

    /// Asserts that `body` throws a `NetleaseError` with `code` whose message contains `text`.
    private func assertFails(
        _ code: ErrorCode,
        containing text: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            XCTFail("expected \(code.rawValue)", file: file, line: line)
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(text), error.message, file: file, line: line)
        } catch {
            XCTFail("expected a NetleaseError, got \(error)", file: file, line: line)
        }
    }

    // MARK: misbehaving peers

    func testConnectFailsWhenTheServerAcceptsButNeverGreets() async throws {
        let endpoint = try await scripted(greeting: nil)
        let started = ContinuousClock.now
        await assertFails(.unavailable, containing: "no greeting within") {
            try await withDeadline(.seconds(10), "connect to a silent server") {
                try await NetleaseConnection.connect(to: endpoint, greetingTimeout: .milliseconds(300)) {
                    try await $0.ping()
                }
            }
        }
        let waited = ContinuousClock.now - started
        // A plaintext client is told the likeliest cause: the coordinator wants TLS.
        await assertFails(.unavailable, containing: "requires TLS") {
            try await NetleaseConnection.connect(to: endpoint, greetingTimeout: .milliseconds(50)) { _ in }
        }
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(300), "gave up before the greeting timeout")
        XCTAssertLessThan(waited, .seconds(5), "the greeting timeout did not bound the wait")
    }

    func testConnectOverUnixSocketFailsWhenTheServerNeverGreets() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nl-\(UUID().uuidString).sock").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        servers.append(try await ScriptedServer.unix(path: path, greeting: nil))
        await assertFails(.unavailable, containing: "no greeting within") {
            try await withDeadline(.seconds(10), "connect to a silent socket") {
                try await NetleaseConnection.connect(socketPath: path, greetingTimeout: .milliseconds(200)) {
                    try await $0.ping()
                }
            }
        }
    }

    func testDefaultGreetingTimeoutIsBoundedAndLongerThanAConnect() {
        XCTAssertGreaterThan(NetleaseConnection.defaultGreetingTimeout, .zero)
        XCTAssertLessThanOrEqual(NetleaseConnection.defaultGreetingTimeout, .seconds(30))
        XCTAssertGreaterThanOrEqual(NetleaseConnection.defaultGreetingTimeout, NetleaseConnection.defaultConnectTimeout)
    }

    func testPendingRequestFailsWhenTheServerClosesBeforeAnswering() async throws {
        let endpoint = try await scripted(greeting: Greeting(authRequired: false).line, answer: .writeThenClose(""))
        await assertFails(.unavailable, containing: "closed the connection") {
            try await withDeadline(.seconds(10), "a request to a server that closes") {
                try await NetleaseConnection.connect(to: endpoint) { connection in
                    try await connection.ping()
                }
            }
        }
    }

    func testAHostRemovalReplyWithoutTheRevokedFieldLeavesTheCredentialUnknown() async throws {
        // A coordinator that predates revocation on removal answers only `released`: whether the host's credential
        // still works is unknown, and must not read as "it had none".
        let old = try await scripted(
            greeting: Greeting(authRequired: false).line,
            answer: .writeThenClose("OK released=2\n")
        )
        let removal = try await withDeadline(.seconds(10), "host removal") {
            try await NetleaseConnection.connect(to: old) { try await $0.removeHost("h1") }
        }
        XCTAssertEqual(removal, HostRemoval(released: 2, revoked: nil, closed: 0))
        let now = try await scripted(
            greeting: Greeting(authRequired: false).line,
            answer: .writeThenClose("OK released=0 revoked=0 closed=0\n")
        )
        let none = try await withDeadline(.seconds(10), "host removal") {
            try await NetleaseConnection.connect(to: now) { try await $0.removeHost("h1") }
        }
        XCTAssertEqual(none, HostRemoval(released: 0, revoked: false, closed: 0))
    }

    func testPendingRequestFailsWhenTheServerClosesInTheMiddleOfARecordList() async throws {
        let partial = "OK count=3\nNETWORK name=a subnet=10.0.0.0/24\n"
        let endpoint = try await scripted(
            greeting: Greeting(authRequired: false).line,
            answer: .writeThenClose(partial)
        )
        await assertFails(.unavailable, containing: "mid-reply") {
            try await withDeadline(.seconds(10), "a listing cut short") {
                try await NetleaseConnection.connect(to: endpoint) { connection in
                    _ = try await connection.send(Request.networkList)
                }
            }
        }
    }

    func testEveryPipelinedRequestFailsWhenTheServerCloses() async throws {
        let endpoint = try await scripted(greeting: Greeting(authRequired: false).line, answer: .writeThenClose(""))
        try await withDeadline(.seconds(10), "pipelined requests to a server that closes") {
            try await NetleaseConnection.connect(to: endpoint) { connection in
                let failures = await withTaskGroup(of: ErrorCode?.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            do {
                                try await connection.ping()
                                return nil
                            } catch {
                                return (error as? NetleaseError)?.code
                            }
                        }
                    }
                    var codes: [ErrorCode?] = []
                    for await code in group { codes.append(code) }
                    return codes
                }
                XCTAssertEqual(failures, Array(repeating: .unavailable, count: 8))
            }
        }
    }

    // MARK: verbs against a real coordinator

    func testAcquireIsIdempotentReleaseFreesAndListShowsWhatIsHeld() async throws {
        let harness = try await CoordinatorHarness.start()
        self.harness = harness
        try await harness.connect { c in
            _ = try await c.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
            let first = try await c.acquire(AcquireRequest(network: "prod", owner: "web"))
            let again = try await c.acquire(AcquireRequest(network: "prod", owner: "web"))
            XCTAssertEqual(again.address, first.address, "the same owner must get the same address")
            let other = try await c.acquire(AcquireRequest(network: "prod", owner: "db"))
            XCTAssertNotEqual(other.address, first.address)

            let listed = try await c.leases(.init(network: "prod", state: .active))
            XCTAssertEqual(Set(listed.map(\.owner)), ["web", "db"])
            XCTAssertEqual(listed.first { $0.owner == "web" }?.address, first.address)

            let released = try await c.release(ReleaseRequest(network: "prod", owner: "web"))
            XCTAssertEqual(released?.address, first.address)
            let releasedAgain = try await c.release(ReleaseRequest(network: "prod", owner: "web"))
            XCTAssertNil(releasedAgain, "a repeated release matches nothing and harms nothing")
            let remaining = try await c.leases(.init(network: "prod", state: .active))
            XCTAssertEqual(remaining.map(\.owner), ["db"])
        }
    }

    func testUnauthenticatedClientIsToldToAuthenticate() async throws {
        let harness = try await CoordinatorHarness.start()
        self.harness = harness
        await assertFails(.authRequired, containing: "AUTH") {
            try await harness.connect(authenticated: false) { c in
                XCTAssertTrue(c.greeting.authRequired)
                _ = try await c.leases()
            }
        }
    }

    // MARK: finding the leader among several addresses (pauses recorded, not slept)

    /// A standby that names `leader` (or no leader) in its `not-leader`.
    private func standby(naming leader: Endpoint?) async throws -> ScriptedServer {
        let message = leader.map { "leader=\($0) this coordinator is a standby" } ?? "no leader is known"
        let server = try await ScriptedServer.tcp(
            greeting: Greeting(authRequired: true).line,
            answer: .standby(message)
        )
        servers.append(server)
        return server
    }

    /// An address nothing listens on: a listener's port, closed again.
    private func refusing() async throws -> Endpoint {
        let server = try await ScriptedServer.tcp(greeting: nil)
        await server.stop()
        return Endpoint(host: "127.0.0.1", port: server.port)
    }

    private func endpoint(_ server: ScriptedServer) -> Endpoint {
        Endpoint(host: "127.0.0.1", port: server.port)
    }

    func testFollowsTheHintAtOnceAfterPausingPastARefusingAddress() async throws {
        let harness = try await CoordinatorHarness.start()
        self.harness = harness
        let refused = try await refusing()
        let standby = try await standby(naming: harness.endpoint)
        let pauses = PauseLog()
        let search = LeaderSearch { await pauses.add($0) }
        let list = [refused, endpoint(standby)]
        let secret = harness.secret?.text

        let role = try await withDeadline(.seconds(30), "connectToLeader") {
            try await NetleaseConnection.connectToLeader(
                among: list,
                secret: secret,
                search: search
            ) { c in try await c.stats()["role"] ?? "leader" }
        }

        XCTAssertEqual(role, "leader")
        XCTAssertEqual(standby.connections, 1, "the standby is asked once, its hint followed")
        let recorded = await pauses.all
        XCTAssertEqual(recorded.count, 1, "one pause after the refusing address, none before following the hint")
        XCTAssertTrue(recorded.allSatisfy { $0 > .zero && $0 <= search.maxPause }, "\(recorded)")
    }

    func testGivesUpWithUnavailableNamingWhatEachAddressAnswered() async throws {
        let refused = try await refusing()
        // Two standbys naming each other: the hint is followed once, never back and forth.
        let first = try await standby(naming: nil)
        let second = try await standby(naming: endpoint(first))
        let firstHinting = try await standby(naming: endpoint(second))
        let pauses = PauseLog()
        let search = LeaderSearch(rounds: 2) { await pauses.add($0) }
        let list = [refused, endpoint(firstHinting), endpoint(first)]

        do {
            try await withDeadline(.seconds(30), "connectToLeader") {
                try await NetleaseConnection.connectToLeader(among: list, secret: "s", search: search) { c in
                    _ = try await c.leases()
                }
            }
            XCTFail("no coordinator leads, yet connectToLeader returned")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .unavailable, "\(error)")
            XCTAssertTrue(error.message.hasPrefix("no coordinator leads: "), error.message)
            XCTAssertTrue(error.message.contains("\(refused) answered unavailable cannot connect"), error.message)
            XCTAssertTrue(
                error.message.contains("\(endpoint(firstHinting)) answered not-leader leader=\(endpoint(second))"),
                error.message
            )
            XCTAssertTrue(error.message.contains("\(endpoint(second)) answered not-leader leader="), error.message)
            XCTAssertTrue(error.message.contains("\(endpoint(first)) answered not-leader no leader"), error.message)
        }
        // Each listed address twice, the hint once on top; a pause between list addresses only.
        XCTAssertEqual(firstHinting.connections, 2)
        XCTAssertEqual(first.connections, 2)
        XCTAssertEqual(second.connections, 1, "the second hint (back to the first standby) must not be followed")
        let recorded = await pauses.all
        XCTAssertEqual(recorded.count, 5, "\(recorded)")
        XCTAssertTrue(recorded.allSatisfy { $0 > .zero && $0 <= search.maxPause }, "\(recorded)")
    }

    /// Nothing reachable: one address fails with its own connection error (what a single-coordinator user expects
    /// to read); several say that none could be reached, naming each.
    func testUnreachableAddressesAreNamedAsSuch() async throws {
        let first = try await refusing()
        let second = try await refusing()
        let search = LeaderSearch(rounds: 1) { _ in }
        for (list, prefix) in [
            ([first], "cannot connect to coordinator at \(first)"),
            ([first, second], "no coordinator could be reached: \(first) answered unavailable cannot connect"),
        ] {
            do {
                try await withDeadline(.seconds(30), "connectToLeader") {
                    try await NetleaseConnection.connectToLeader(among: list, secret: "s", search: search) { c in
                        _ = try await c.leases()
                    }
                }
                XCTFail("nothing listens, yet connectToLeader returned")
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .unavailable, "\(error)")
                XCTAssertTrue(error.message.hasPrefix(prefix), error.message)
            }
        }
    }

    func testBackoffGrowsAndStaysBounded() {
        let search = LeaderSearch(firstPause: .milliseconds(100), maxPause: .seconds(1))
        for attempts in 1...20 {
            let delay = search.delay(after: attempts)
            let ceiling = min(.milliseconds(100) * (1 << min(attempts - 1, 10)), Duration.seconds(1))
            XCTAssertGreaterThanOrEqual(delay, ceiling / 2, "attempt \(attempts)")
            XCTAssertLessThanOrEqual(delay, ceiling, "attempt \(attempts)")
        }
    }
}

/// The pauses a search asked for, in order.
private actor PauseLog {
    private(set) var all: [Duration] = []
    func add(_ pause: Duration) { all.append(pause) }
}
