import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import XCTest

/// Connections without a credential never crowd out those with one (DESIGN.md invariant 8): silent sockets give
/// way, a connection that does not authenticate is closed at its deadline whatever it sends meanwhile, and
/// read-only credentials have their own cap. Real coordinator, real TCP on loopback.
final class ConnectionAdmissionTests: XCTestCase {
    var harness: CoordinatorHarness!

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    /// As many silent sockets as the server has slots: an agent still connects, authenticates and joins.
    func testSilentSocketsFillingEverySlotCannotKeepAnAgentOut() async throws {
        let caps = ConnectionAdmission.Limits(maxUnauthenticated: 16, maxUnauthenticatedPerSource: 8, maxReaders: 4)
        harness = try await CoordinatorHarness.start(maxConnections: 40, admission: caps)
        try await harness.connect { c in
            _ = try await c.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/16")!))
        }
        let port = harness.endpoint.port
        let silent = try await Task.detached { () -> [RawLineClient] in
            var sockets: [RawLineClient] = []
            for _ in 0..<40 {
                let socket = try RawLineClient(port: port)
                // Each one was accepted: it got the greeting (or, once evicted, the greeting and the reason).
                XCTAssertEqual(try socket.readLine(), "NETLEASE version=1 auth=required")
                sockets.append(socket)
            }
            return sockets
        }.value
        let joined = try await harness.connect { c in
            try await c.join(host: "h1", underlay: IPv4Address("10.0.0.1")!, networks: ["prod"])
        }
        XCTAssertGreaterThan(joined.epoch, 0)
        let stats = try await harness.connect { try await $0.stats() }
        XCTAssertLessThanOrEqual(Int(stats["connections-unauthenticated"] ?? "") ?? 99, 8, "\(stats)")
        XCTAssertGreaterThanOrEqual(Int(stats["connections-evicted"] ?? "") ?? 0, 32, "\(stats)")
        // The oldest silent socket gave way first, and was told why.
        let first = silent[0]
        let reason = try await Task.detached { try first.readLine() }.value
        XCTAssertEqual(
            reason?.hasPrefix("ERR overloaded too many unauthenticated connections"),
            true,
            "\(reason ?? "")"
        )
        withExtendedLifetime(silent) {}
    }

    /// PING answers before AUTH but does not keep a connection without a credential open past its deadline.
    func testAConnectionThatNeverAuthenticatesIsClosedAtTheDeadlineEvenWhilePinging() async throws {
        harness = try await CoordinatorHarness.start(authTimeout: .seconds(1))
        let port = harness.endpoint.port
        let seen = try await Task.detached { () -> [String] in
            let client = try RawLineClient(port: port, receiveTimeoutSeconds: 5)
            var lines = [try client.readLine() ?? ""]
            let stop = StopFlag()
            DispatchQueue(label: "pinger").async {
                // Traffic, not synchronisation: a PING every 100 ms keeps an idle timeout at bay forever.
                while !stop.isSet, (try? client.send("PING\n")) != nil { usleep(100_000) }
            }
            defer { stop.set() }
            // The test's deadline: a connection still open after it fails the test.
            let deadline = ContinuousClock.now + .seconds(15)
            while let line = try client.readLine() {
                lines.append(line)
                if ContinuousClock.now > deadline {
                    lines.append("still open after 15 s")
                    break
                }
            }
            return lines
        }.value
        XCTAssertEqual(seen.first, "NETLEASE version=1 auth=required")
        XCTAssertTrue(seen.contains("OK pong=1"), "\(seen.prefix(3))")
        XCTAssertEqual(seen.last?.hasPrefix("ERR auth-required no AUTH within"), true, "\(seen.suffix(2))")
        // An authenticated connection is not subject to it.
        try await harness.connect { c in
            _ = try await c.stats()
            let stats = try await c.stats()
            XCTAssertEqual(stats["connections-unauthenticated"], "0")
        }
    }

    /// Read-only connections have their own cap; admins and agents still get in beyond it.
    func testReadersBeyondTheirCapAreRefusedWhileAdminsStillGetIn() async throws {
        let caps = ConnectionAdmission.Limits(maxUnauthenticated: 16, maxUnauthenticatedPerSource: 8, maxReaders: 2)
        harness = try await CoordinatorHarness.start(maxConnections: 40, admission: caps)
        let port = harness.endpoint.port
        let reader = harness.readerSecret.text
        let replies = try await Task.detached { () -> ([RawLineClient], String?) in
            var held: [RawLineClient] = []
            for _ in 0..<2 {
                let client = try RawLineClient(port: port)
                _ = try client.readLine()
                try client.send("AUTH secret=\(reader)\nWATCH\n")
                XCTAssertEqual(try client.readLine(), "OK role=reader")
                held.append(client)
            }
            let third = try RawLineClient(port: port)
            _ = try third.readLine()
            try third.send("AUTH secret=\(reader)\n")
            let refused = try third.readLine()
            XCTAssertTrue(third.isClosedByPeer(), "a reader over the cap kept its connection")
            return (held, refused)
        }.value
        XCTAssertEqual(
            replies.1?.hasPrefix("ERR overloaded too many read-only connections"),
            true,
            "\(replies.1 ?? "")"
        )
        let stats = try await harness.connect { try await $0.stats() }
        XCTAssertEqual(stats["connections-readers"], "2")
        withExtendedLifetime(replies.0) {}
    }
}

/// A flag set once from another thread.
private final class StopFlag: @unchecked Sendable {
    // @unchecked: `flag` is only touched under `lock`.
    private let lock = NSLock()
    private var flag = false
    var isSet: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}
