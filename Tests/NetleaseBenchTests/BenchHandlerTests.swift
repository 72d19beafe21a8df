import NIOCore
import NIOEmbedded
import NetleaseCore
import NetleaseTransport
import NetleaseWire
import XCTest

@testable import NetleaseBench

/// The lean client's handler on an embedded channel, fed the lines a coordinator writes (rendered by NetleaseWire,
/// as the coordinator renders them). Scheduled sends run when the test advances the loop's virtual clock.
final class BenchHandlerTests: XCTestCase {
    private var loop: EmbeddedEventLoop!
    private var channel: EmbeddedChannel!
    private var handler: BenchHandler!
    private var ready: EventLoopFuture<Void>!
    private var done: EventLoopFuture<ConnectionResult>!

    private static let endpoint = Endpoint(host: "127.0.0.1", port: 1)

    private static let target = BenchTarget(endpoint: endpoint, secret: "s3cret", network: "bench")
    private static let greeting = Greeting(authRequired: true).line + "\n"

    override func tearDown() async throws {
        _ = try? channel?.finish()
    }

    private func start(_ role: BenchHandler.Role, index: Int = 4, secret: String? = "s3cret") throws {
        loop = EmbeddedEventLoop()
        let readyPromise = loop.makePromise(of: Void.self)
        let donePromise = loop.makePromise(of: ConnectionResult.self)
        ready = readyPromise.futureResult
        done = donePromise.futureResult
        handler = BenchHandler(index: index, role: role, secret: secret, ready: readyPromise, done: donePromise)
        channel = EmbeddedChannel(handler: handler, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Delivers `text` as one read (and the read-complete that flushes what the handler wrote in answer).
    private func receive(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    private struct NotComplete: Error {}

    /// How `future` has completed so far, without waiting: the embedded loop runs a completed future's callbacks
    /// at once, so a future that is not complete fails the test instead of hanging it.
    private func outcome<T: Sendable>(_ future: EventLoopFuture<T>) -> Result<T, Error>? {
        let box = OutcomeBox<T>()
        future.whenComplete { box.result = $0 }
        return box.result
    }

    private func value<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        guard let result = outcome(future) else { throw NotComplete() }
        return try result.get()
    }

    private func failed<T: Sendable>(_ future: EventLoopFuture<T>) -> Bool {
        if case .failure? = outcome(future) { return true }
        return false
    }

    /// The lines written since the last call.
    private func sent() throws -> [String] {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        XCTAssertTrue(text.isEmpty || text.hasSuffix("\n"), "whole lines only: \(text.debugDescription)")
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    private func loadRole(budget: Int = 100, pipeline: Int = 1, release: Bool = false) -> BenchHandler.Role {
        let plan = LoadPlan(
            target: Self.target,
            ownerPrefix: "b-run",
            connections: 8,
            pipeline: pipeline,
            intervalNs: 0,
            release: release,
            budget: budget,
            duration: 60
        )
        return .load(LoadRole(plan: plan, shared: RunShared(budget: budget)))
    }

    private static func leaseReply(_ owner: String, _ last: UInt8, released: Bool = false) -> String {
        var fields = WireCodec.fields(
            lease: Lease(
                network: "bench",
                address: IPv4Address(10, 250, 0, last),
                prefix: 16,
                state: .active,
                owner: owner,
                isStatic: false,
                created: 1,
                renewed: 1
            )
        )
        if released { fields["released"] = "1" }
        return Reply.ok(fields).rendered
    }

    private static func errorReply(_ code: ErrorCode, _ message: String) -> String {
        Reply.error(NetleaseError(code, message)).rendered
    }

    private static func acquire(_ owner: String) -> String {
        Request.acquire(AcquireRequest(network: "bench", owner: owner)).rendered
    }

    /// Authenticates a load connection and starts it; returns the lines it sent first.
    private func startLoad(_ role: BenchHandler.Role) throws -> [String] {
        try start(role)
        try receive(Self.greeting)
        XCTAssertEqual(try sent(), [Request.auth(secret: "s3cret").rendered])
        try receive(Reply.ok(["role": "admin"]).rendered)
        try value(ready)
        let now = BenchClock.nowNs()
        handler.startLoad(startNs: now, deadlineNs: now + 60_000_000_000)
        loop.advanceTime(to: .uptimeNanoseconds(now))
        return try sent()
    }

    func testAClosedLoopConnectionKeepsItsPipelineFullAndRecordsEachAddress() throws {
        XCTAssertEqual(
            try startLoad(loadRole(budget: 3, pipeline: 2)),
            [Self.acquire("b-run-4-0"), Self.acquire("b-run-4-1")]
        )
        // Two replies in one read, the second split across reads, CR LF accepted.
        try receive(Self.leaseReply("b-run-4-0", 10))
        XCTAssertEqual(try sent(), [Self.acquire("b-run-4-2")], "each reply sends the next acquire")
        let second = Self.leaseReply("b-run-4-1", 11).dropLast() + "\r\n"
        try receive(String(second.prefix(20)))
        XCTAssertEqual(try sent(), [])
        try receive(String(second.dropFirst(20)))
        XCTAssertEqual(try sent(), [], "the budget of 3 is spent")
        try receive(Self.leaseReply("b-run-4-2", 12))
        let result = try value(done)
        XCTAssertEqual(result.held.map(\.0), [0, 1, 2])
        XCTAssertEqual(result.held.map(\.1), [10, 11, 12].map { IPv4Address(10, 250, 0, $0).value })
        XCTAssertEqual(result.acquireLatencies.count, 3)
        XCTAssertEqual(result.acquiresInWindow, 3)
        XCTAssertEqual(result.errors, [:])
        XCTAssertFalse(channel.isActive, "a finished connection closes")
    }

    func testErrorRepliesAreCountedByCodeAndTheLoopGoesOn() throws {
        XCTAssertEqual(try startLoad(loadRole(budget: 3)), [Self.acquire("b-run-4-0")])
        try receive(Self.errorReply(.poolExhausted, "no free address in bench (usable=65534 active=65534)"))
        XCTAssertEqual(try sent(), [Self.acquire("b-run-4-1")])
        try receive("ERR teapot short and stout\n")
        XCTAssertEqual(try sent(), [Self.acquire("b-run-4-2")])
        try receive("HELLO\n")
        let result = try value(done)
        XCTAssertEqual(result.errors, ["pool-exhausted": 1, "internal": 1, "malformed-reply": 1])
        XCTAssertEqual(result.held.count, 0)
        XCTAssertEqual(result.acquireLatencies.count, 0)
    }

    func testReleaseModeReleasesEachLeaseAtOnceAndTracksFailedReleases() throws {
        XCTAssertEqual(try startLoad(loadRole(budget: 2, release: true)), [Self.acquire("b-run-4-0")])
        try receive(Self.leaseReply("b-run-4-0", 10))
        XCTAssertEqual(try sent(), [Request.release(ReleaseRequest(network: "bench", owner: "b-run-4-0")).rendered])
        try receive(Self.leaseReply("b-run-4-0", 10, released: true))
        XCTAssertEqual(try sent(), [Self.acquire("b-run-4-1")])
        try receive(Self.leaseReply("b-run-4-1", 11))
        XCTAssertEqual(try sent(), [Request.release(ReleaseRequest(network: "bench", owner: "b-run-4-1")).rendered])
        try receive(Self.errorReply(.storage, "disk full"))
        let result = try value(done)
        XCTAssertEqual(result.held.count, 0, "released leases are not held")
        XCTAssertEqual(result.releaseLatencies.count, 1)
        XCTAssertEqual(result.releasesInWindow, 1)
        XCTAssertEqual(result.releaseFailedSeqs, [1])
        XCTAssertEqual(result.errors, ["release:storage": 1])
    }

    func testARefusedConnectionOrFailedAuthFailsReady() throws {
        try start(loadRole())
        try receive(Self.errorReply(.overloaded, "too many connections; try again later"))
        XCTAssertTrue(failed(ready))
        XCTAssertEqual(try value(done).errors, ["overloaded": 1])

        try start(loadRole())
        try receive(Self.greeting)
        _ = try sent()
        try receive(Self.errorReply(.authFailed, "wrong secret"))
        XCTAssertTrue(failed(ready))
        XCTAssertEqual(try value(done).errors, ["auth:auth-failed": 1])

        try start(loadRole())
        try receive("SMTP ready\n")
        XCTAssertTrue(failed(ready))
        XCTAssertEqual(try value(done).errors, ["malformed-greeting": 1])
    }

    func testWithoutASecretNoAuthIsSent() throws {
        try start(loadRole(), secret: nil)
        try receive(Greeting(authRequired: false).line + "\n")
        XCTAssertEqual(try sent(), [])
        XCTAssertNoThrow(try value(ready))
    }

    func testAnAgentJoinsThenAcquiresWithItsEpochAndHeartbeats() throws {
        let plan = AgentPlan(
            target: Self.target,
            hostPrefix: "ba-run",
            agents: 10,
            leasesEach: 2,
            heartbeatNs: 1_000_000_000,
            holdSeconds: 1
        )
        try start(.agent(AgentRole(plan: plan, number: 7)))
        try receive(Self.greeting)
        _ = try sent()
        try receive(Reply.ok(["role": "admin"]).rendered)
        XCTAssertEqual(
            try sent(),
            [
                Request.join(host: "ba-run-7", underlay: IPv4Address(100, 64, 0, 8), networks: ["bench"]).rendered
            ]
        )
        let bridge = Lease(
            network: "bench",
            address: IPv4Address(10, 250, 0, 1),
            prefix: 16,
            state: .active,
            host: "ba-run-7",
            owner: Lease.bridgeOwner(host: "ba-run-7"),
            created: 1,
            renewed: 1
        )
        let join = Reply.list(
            header: ["host": "ba-run-7", "epoch": "12", "store": "s", "generation": "3"],
            tag: WireCodec.leaseTag,
            records: [WireCodec.fields(lease: bridge)]
        )
        try receive(join.rendered)
        let claim = HostClaim(host: "ba-run-7", epoch: 12)
        XCTAssertEqual(
            try sent(),
            ["ba-run-7-0", "ba-run-7-1"].map {
                Request.acquire(AcquireRequest(network: "bench", owner: $0, claim: claim)).rendered
            }
        )
        try receive(Self.leaseReply("ba-run-7-0", 20) + Self.errorReply(.staleEpoch, "epoch 12 is stale"))
        XCTAssertNoThrow(try value(ready), "ready once every lease was answered")
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(try sent(), [Request.heartbeat(host: "ba-run-7", epoch: 12).rendered])
        try receive(Reply.ok(["epoch": "12", "generation": "4"]).rendered)
        handler.stop()
        let result = try value(done)
        XCTAssertEqual(result.joinLatencies.count, 1)
        XCTAssertEqual(result.acquireLatencies.count, 1)
        XCTAssertEqual(result.heartbeatLatencies.count, 1)
        XCTAssertEqual(result.errors, ["acquire:stale-epoch": 1])
    }

    func testAWatcherIsReadyAfterTheSnapshotAndCountsEvents() throws {
        try start(.watcher)
        try receive(Self.greeting)
        _ = try sent()
        try receive(Reply.ok(["role": "reader"]).rendered)
        XCTAssertEqual(try sent(), [Request.watch.rendered])
        let host = HostRecord(
            name: "h1",
            underlay: IPv4Address(192, 0, 2, 1),
            epoch: 1,
            state: .up,
            networks: ["bench"],
            joined: 1,
            lastHeartbeat: 1
        )
        let snapshot = Reply.list(
            header: Fields(),
            tag: WireCodec.hostTag,
            records: [WireCodec.fields(host: host), WireCodec.fields(host: host)]
        )
        let lines = snapshot.rendered
        try receive(String(lines.prefix(lines.count - 10)))
        XCTAssertNil(outcome(ready), "not before the last record")
        try receive(String(lines.suffix(10)))
        XCTAssertNoThrow(try value(ready))
        try receive(Event.hostRemoved("h1").rendered + Event.keepalive.rendered)
        handler.stop()
        let result = try value(done)
        XCTAssertEqual(result.events, 2)
        XCTAssertEqual(result.errors, [:])
    }

    func testAClosedConnectionCountsWhatWasInFlight() throws {
        XCTAssertEqual(try startLoad(loadRole(pipeline: 3)).count, 3)
        channel.pipeline.fireChannelInactive()
        let result = try value(done)
        XCTAssertEqual(result.errors, ["connection-lost": 3, "connection-closed-by-coordinator": 1])
    }
}

/// Holds a future's result for the test that reads it.
private final class OutcomeBox<T>: @unchecked Sendable {
    // @unchecked: written by a callback the embedded loop runs on the test's own thread, read there afterwards.
    var result: Result<T, Error>?
}
