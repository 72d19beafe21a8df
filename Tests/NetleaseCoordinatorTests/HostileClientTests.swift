import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Each hostile client may be closed or throttled, but a well-behaved client on another connection keeps getting
/// every answer. Its latency under each load is printed for the record (no timing is asserted).
final class HostileClientTests: XCTestCase {
    var harness: CoordinatorHarness!

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    private func start(
        maxConnections: Int = 4096,
        lineTimeout: Duration = .seconds(30),
        admission: ConnectionAdmission.Limits = CoordinatorConfiguration.defaults.admission
    ) async throws {
        harness = try await CoordinatorHarness.start(
            maxConnections: maxConnections,
            lineTimeout: lineTimeout,
            admission: admission
        )
        try await harness.connect { c in
            _ = try await c.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/16")!))
        }
    }

    /// The well-behaved client: `count` acquire/release pairs; returns per-request latencies in microseconds.
    private func wellBehaved(_ count: Int, tag: String) async throws -> [Int] {
        try await harness.connect { c in
            var latencies: [Int] = []
            for index in 0..<count {
                let start = ContinuousClock.now
                let lease = try await c.acquire(AcquireRequest(network: "prod", owner: "\(tag)-\(index)"))
                XCTAssertEqual(lease.owner, "\(tag)-\(index)")
                let elapsed = ContinuousClock.now - start
                latencies.append(
                    Int(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)
                )
            }
            return latencies
        }
    }

    private func report(_ name: String, _ latencies: [Int]) {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return }
        let p50 = sorted[sorted.count / 2]
        let p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
        print(
            "hostile load '\(name)': well-behaved client \(sorted.count) requests, p50=\(p50)us p99=\(p99)us max=\(sorted.last!)us"
        )
    }

    func testSlowlorisLineIsClosedAtTheLineDeadlineWhileOthersAreServed() async throws {
        try await start(lineTimeout: .seconds(1))
        let port = harness.endpoint.port
        let closed = Task.detached { () -> Bool in
            let slow = try RawLineClient(port: port, receiveTimeoutSeconds: 30)
            _ = try slow.readLine()
            try slow.send("PIN")  // never finished
            return slow.isClosedByPeer()
        }
        let latencies = try await wellBehaved(200, tag: "slowloris")
        XCTAssertEqual(latencies.count, 200)
        let wasClosed = try await closed.value
        XCTAssertTrue(wasClosed, "the server kept a half-sent line open past its deadline")
        report("slowloris", latencies)
    }

    func testFiveThousandIdleConnectionsDoNotStallAWellBehavedClient() async throws {
        // 5000 client sockets and the server's 5000 in this one process: raise the limit for this test only.
        let before = OpenFileLimitChange.limits()
        let change = OpenFileLimitChange(raisingTo: 12_000)
        addTeardownBlock {
            XCTAssertTrue(change.restore(), "the descriptor limit could not be restored")
            let after = OpenFileLimitChange.limits()
            XCTAssertTrue(after == before, "descriptor limits \(after) after the test, \(before) before")
        }
        guard change.current >= 11_000 else {
            try missingCapability("the descriptor limit is \(change.current) and cannot be raised to 11000")
        }
        // Capacity, not admission, is under test: the unauthenticated caps are raised so all 5000 stay open.
        try await start(
            maxConnections: 6000,
            admission: .init(maxUnauthenticated: 5500, maxUnauthenticatedPerSource: 5500)
        )
        var idle: [RawLineClient] = []
        for _ in 0..<5000 { idle.append(try RawLineClient(port: harness.endpoint.port)) }
        // Every idle connection was accepted and greeted: the server holds all 5000.
        XCTAssertEqual(try idle.last?.readLine(), "NETLEASE version=1 auth=required")
        let latencies = try await wellBehaved(500, tag: "idle")
        XCTAssertEqual(latencies.count, 500)
        let stats = try await harness.connect { try await $0.stats() }
        XCTAssertGreaterThanOrEqual(Int(stats["connections"] ?? "") ?? 0, 5000)
        report("5000 idle connections", latencies)
        idle.removeAll()
    }

    func testAClientThatNeverReadsItsRepliesOnlyStallsItself() async throws {
        try await start()
        try await harness.connect { c in
            for index in 0..<300 { _ = try await c.acquire(AcquireRequest(network: "prod", owner: "filler-\(index)")) }
        }
        let port = harness.endpoint.port
        let secret = harness.secret!.text
        // ~300 leases per reply, 2,000 requests queued: far more than socket buffers hold.
        let flood = Task.detached { () -> RawLineClient in
            let greedy = try RawLineClient(port: port)
            try greedy.send("AUTH secret=\(secret)\n")
            let request = "LEASE-LIST network=prod\n"
            try greedy.send(String(repeating: request, count: 2000))
            return greedy
        }
        let latencies = try await wellBehaved(300, tag: "greedy")
        XCTAssertEqual(latencies.count, 300)
        let greedy = try await flood.value
        // The greedy client can still read its first reply: it was throttled, not dropped.
        XCTAssertEqual(try greedy.readLine(), "NETLEASE version=1 auth=required")
        XCTAssertEqual(try greedy.readLine(), "OK role=admin")
        report("client never reading", latencies)
    }

    func testBinaryGarbageGetsErrorsAndChangesNothing() async throws {
        try await start()
        let seed = ReplayableRandom(test: "binary garbage").seed
        let port = harness.endpoint.port
        let garbage = Task.detached { () -> [String] in
            var generator = ReplayableRandom(seed: seed)
            let raw = try RawLineClient(port: port)
            _ = try raw.readLine()
            var bytes: [UInt8] = []
            for _ in 0..<200 {
                var line = (0..<Int.random(in: 1...300, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
                line.removeAll { $0 == 0x0A }
                bytes += line + [0x0A]
            }
            try raw.send(bytes)
            return try raw.readLines(200)
        }
        let latencies = try await wellBehaved(200, tag: "garbage")
        let replies = try await garbage.value
        XCTAssertEqual(replies.count, 200)
        for reply in replies { XCTAssertTrue(reply.hasPrefix("ERR "), reply) }
        let leases = try await harness.connect { try await $0.leases(.init(network: "prod")) }
        XCTAssertEqual(Set(leases.map(\.owner)), Set((0..<200).map { "garbage-\($0)" }))
        report("binary garbage", latencies)
    }
}
