import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NetleaseTransport
import ServiceLifecycle
import Synchronization
import XCTest

/// The HTTP server on real sockets (loopback TCP and a unix socket), driven by NIO's own HTTP client codec.
final class HTTPServerTests: XCTestCase {
    private var group: ServiceGroup?
    private var run: Task<Void, Error>?
    private var directory: URL?

    override func tearDown() async throws {
        await stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Routes: GET /hello, POST /echo (answers the JSON body back), GET /slow (says it started, then waits for the
    /// test's go).
    private static func routes(
        slow: AsyncStream<Void>? = nil,
        started: AsyncStream<Void>.Continuation? = nil
    ) -> HTTPRoutes {
        var routes = HTTPRoutes()
        routes.add(.GET, "/hello") { request in
            .text(.ok, "hello \(request.query ?? "")\n")
        }
        routes.add(.POST, "/echo") { request in
            guard request.headers.first(name: "content-type") == "application/json" else {
                return .text(.unsupportedMediaType, "JSON only\n")
            }
            let object = try JSONSerialization.jsonObject(with: Data(request.bodyText.utf8)) as? [String: Any]
            let answer = try JSONSerialization.data(withJSONObject: ["got": object?["name"] ?? NSNull()])
            return HTTPServerResponse(
                status: .ok,
                headers: HTTPHeaders([("Content-Type", "application/json")]),
                body: ByteBuffer(bytes: answer)
            )
        }
        routes.add(.GET, "/slow") { _ in
            started?.yield()
            if let slow { for await _ in slow { break } }
            return .text(.ok, "finally\n")
        }
        return routes
    }

    /// Starts a server and returns its bound address.
    private func start(
        _ address: HTTPServer.Address = .tcp(host: "127.0.0.1", port: 0),
        routes: HTTPRoutes = routes(),
        maxBodyBytes: Int = 1024,
        idleTimeout: Duration = .seconds(30),
        headTimeout: Duration = .seconds(30),
        requestTimeout: Duration = .seconds(10),
        maxConnections: Int = 16
    ) async throws -> SocketAddress {
        var logger = Logger(label: "test.http")
        logger.logLevel = .critical
        let (bound, sink) = AsyncStream.makeStream(of: SocketAddress.self)
        let server = HTTPServer(
            configuration: .init(
                address: address,
                maxBodyBytes: maxBodyBytes,
                idleTimeout: idleTimeout,
                headTimeout: headTimeout,
                requestTimeout: requestTimeout,
                maxConnections: maxConnections
            ),
            routes: routes,
            logger: logger
        ) { address in
            sink.yield(address)
            sink.finish()
        }
        let group = ServiceGroup(services: [server], logger: logger)
        self.group = group
        run = Task {
            defer { sink.finish() }
            try await group.run()
        }
        return try await within("the server's start") {
            for await address in bound { return address }
            throw HTTPTestError.closed
        }
    }

    private func stop() async {
        await group?.triggerGracefulShutdown()
        if let run { _ = try? await within("the server's stop") { try await run.value } }
        group = nil
        run = nil
    }

    func testGetAnswersWithContentLengthAndTheQueryReachesTheHandler() async throws {
        let address = try await start()
        let response = try await within("GET") {
            try await HTTPTestClient.connect(to: address) { try await $0.request(.GET, "/hello?who=me") }
        }
        XCTAssertEqual(response.status, .ok)
        XCTAssertEqual(response.body, "hello who=me\n")
        XCTAssertEqual(response.headers.first(name: "content-length"), "13")
        XCTAssertEqual(response.headers.first(name: "content-type"), "text/plain; charset=utf-8")
    }

    func testPostWithAJSONBody() async throws {
        let address = try await start()
        let response = try await within("POST") {
            try await HTTPTestClient.connect(to: address) {
                try await $0.request(
                    .POST,
                    "/echo",
                    headers: [("Content-Type", "application/json")],
                    chunks: [#"{"name":"#, #""netlease"}"#]
                )
            }
        }
        XCTAssertEqual(response.status, .ok)
        XCTAssertEqual(response.headers.first(name: "content-type"), "application/json")
        XCTAssertEqual(response.body, #"{"got":"netlease"}"#)
    }

    func testUnknownPathIs404AndAnotherMethodIs405WithAllow() async throws {
        let address = try await start()
        let (missing, wrongMethod) = try await within("404 and 405") {
            try await HTTPTestClient.connect(to: address) { client in
                (try await client.request(.GET, "/nope"), try await client.request(.DELETE, "/hello"))
            }
        }
        XCTAssertEqual(missing.status, .notFound)
        XCTAssertEqual(wrongMethod.status, .methodNotAllowed)
        XCTAssertEqual(wrongMethod.headers.first(name: "allow"), "GET")
    }

    func testABodyOverTheCapGets413AndTheConnectionCloses() async throws {
        let address = try await start(maxBodyBytes: 1024)
        let big = String(repeating: "x", count: 4096)
        let declared = try await within("a declared oversized body") {
            try await HTTPTestClient.connect(to: address) { client in
                let response = try await client.request(
                    .POST,
                    "/echo",
                    headers: [("Content-Type", "application/json"), ("Content-Length", "4096")],
                    chunks: [big]
                )
                return (response, try await client.closedByServer())
            }
        }
        XCTAssertEqual(declared.0.status, .payloadTooLarge)
        XCTAssertEqual(declared.0.headers.first(name: "connection"), "close")
        XCTAssertTrue(declared.1, "the connection closes after a 413")
        // Chunked: the size is known only while reading.
        let chunked = try await within("a chunked oversized body") {
            try await HTTPTestClient.connect(to: address) { client in
                try await client.request(
                    .POST,
                    "/echo",
                    headers: [("Content-Type", "application/json")],
                    chunks: Array(repeating: String(repeating: "y", count: 512), count: 4)
                )
            }
        }
        XCTAssertEqual(chunked.status, .payloadTooLarge)
        // A body exactly at the cap is accepted.
        let atCap = #"{"name":""# + String(repeating: "z", count: 1024 - 11) + #""}"#
        let accepted = try await within("a body at the cap") {
            try await HTTPTestClient.connect(to: address) { client in
                try await client.request(
                    .POST,
                    "/echo",
                    headers: [("Content-Type", "application/json")],
                    chunks: [atCap]
                )
            }
        }
        XCTAssertEqual(atCap.utf8.count, 1024)
        XCTAssertEqual(accepted.status, .ok)
    }

    func testKeepAliveServesTwoRequestsOnOneConnectionAndConnectionCloseEndsIt() async throws {
        let address = try await start()
        let (first, second, third, closed) = try await within("three requests on one connection") {
            try await HTTPTestClient.connect(to: address) { client in
                let first = try await client.request(.GET, "/hello?1")
                let second = try await client.request(.GET, "/hello?2")
                let third = try await client.request(.GET, "/hello?3", headers: [("Connection", "close")])
                return (first, second, third, try await client.closedByServer())
            }
        }
        XCTAssertEqual(first.body, "hello 1\n")
        XCTAssertNil(first.headers.first(name: "connection"), "HTTP/1.1 keeps the connection by default")
        XCTAssertEqual(second.body, "hello 2\n")
        XCTAssertEqual(third.body, "hello 3\n")
        XCTAssertEqual(third.headers.first(name: "connection"), "close")
        XCTAssertTrue(closed)
    }

    func testPipelinedRequestsAreAnsweredInOrder() async throws {
        let address = try await start()
        let bodies = try await within("pipelined requests") {
            try await HTTPTestClient.connect(to: address) { client in
                for i in 1...3 { try await client.send(.GET, "/hello?\(i)") }
                var bodies: [String] = []
                for _ in 1...3 { bodies.append(try await client.response().body) }
                return bodies
            }
        }
        XCTAssertEqual(bodies, ["hello 1\n", "hello 2\n", "hello 3\n"])
    }

    func testConnectionsOverTheCapGet503AtOnceWithoutAskingAndTheServedOneKeepsWorking() async throws {
        // Neither timeout can close anything within the test's deadline: only the cap does.
        let address = try await start(idleTimeout: .seconds(600), headTimeout: .seconds(600), maxConnections: 1)
        let (refusals, served) = try await within("twenty silent connections against a cap of one") {
            try await HTTPTestClient.connect(to: address) { first in
                _ = try await first.request(.GET, "/hello?first")
                let refusals = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 1...20 {
                        group.addTask { try await RawTestConnection.connect(to: address) { try await $0.readAll() } }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                return (refusals, try await first.request(.GET, "/hello?again"))
            }
        }
        XCTAssertEqual(refusals.count, 20)
        for refusal in refusals {
            XCTAssertTrue(refusal.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), refusal)
            XCTAssertTrue(refusal.contains("\r\nConnection: close\r\n"), refusal)
            XCTAssertTrue(refusal.hasSuffix("\r\n\r\ntoo many connections; retry later\n"), refusal)
        }
        XCTAssertEqual(served.body, "hello again\n", "the connection within the cap keeps working")
    }

    func testASilentConnectionWithinTheCapIsClosedByTheHeadDeadlineAndALaterIdleOneIsNot() async throws {
        let address = try await start(idleTimeout: .seconds(600), headTimeout: .milliseconds(200))
        let silent = try await within("the head deadline") {
            try await RawTestConnection.connect(to: address) { try await $0.readAll() }
        }
        XCTAssertEqual(silent, "", "closed without an answer")
        // Once a request was answered the keep-alive idle timeout applies, not the head deadline: the connection is
        // still served after several head deadlines' worth of requests on it.
        let answers = try await within("requests on a kept-alive connection") {
            try await HTTPTestClient.connect(to: address) { client in
                var answers: [String] = []
                for i in 1...3 { answers.append(try await client.request(.GET, "/hello?\(i)").body) }
                return answers
            }
        }
        XCTAssertEqual(answers, ["hello 1\n", "hello 2\n", "hello 3\n"])
    }

    func testShutdownFinishesWhileAClientPipelinesRequestsAndTakesNoAnswer() async throws {
        // An answer larger than this kernel lets the server's send buffer grow (the client's receive buffer is kept
        // small) cannot leave whole while the client does not read: the server's channel stays unwritable, and
        // writing the next answer waits for it.
        let sendBufferMax =
            (try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_wmem", encoding: .utf8))
            .flatMap { $0.split(whereSeparator: \.isWhitespace).last }.flatMap { Int($0) } ?? 4 << 20
        let big = ByteBuffer(repeating: UInt8(ascii: "m"), count: 4 * sendBufferMax)
        let (started, startedSink) = AsyncStream.makeStream(of: Void.self)
        let (go, release) = AsyncStream.makeStream(of: Void.self)
        let calls = Atomic<Int>(0)
        var routes = HTTPRoutes()
        routes.add(.GET, "/big") { _ in
            // From the second request on, answer only once the test says so.
            if calls.add(1, ordering: .relaxed).newValue > 1 {
                startedSink.yield()
                for await _ in go { break }
            }
            return HTTPServerResponse(status: .ok, headers: HTTPHeaders(), body: big)
        }
        let address = try await start(
            routes: routes,
            idleTimeout: .seconds(600),
            headTimeout: .seconds(600),
            requestTimeout: .milliseconds(300)
        )
        let group = try XCTUnwrap(self.group)
        let run = try XCTUnwrap(self.run)
        try await within("shutdown with a client that takes no answer") {
            try await RawTestConnection.connect(to: address, smallReceiveBuffer: true) { client in
                try await client.write(String(repeating: "GET /big HTTP/1.1\r\nHost: test\r\n\r\n", count: 2))
                // The first answer reached the socket (so it is pending, the channel unwritable), and the second
                // request is being answered (so the connection is busy, not idle, when shutdown begins).
                let first = try await client.read()
                XCTAssertEqual(first?.hasPrefix("HTTP/1.1 200 OK\r\n"), true)
                for await _ in started { break }
                await group.triggerGracefulShutdown()
                release.yield()
                // Cancelled (with the server) if the deadline passes, so a failure does not hang the suite.
                try await withTaskCancellationHandler {
                    try await run.value
                } onCancel: {
                    run.cancel()
                }
            }
        }
    }

    func testServesOnAUnixSocket() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("nl-http-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        let path = directory.appendingPathComponent("api.sock").path
        let bound = try await start(.unix(path: path))
        XCTAssertEqual(bound.pathname, path)
        let (get, post) = try await within("requests over the unix socket") {
            try await HTTPTestClient.connect(to: SocketAddress(unixDomainSocketPath: path)) { client in
                (
                    try await client.request(.GET, "/hello"),
                    try await client.request(
                        .POST,
                        "/echo",
                        headers: [("Content-Type", "application/json")],
                        chunks: [#"{"name":"unix"}"#]
                    )
                )
            }
        }
        XCTAssertEqual(get.body, "hello \n")
        XCTAssertEqual(post.body, #"{"got":"unix"}"#)
    }

    func testAnIdleConnectionIsClosedAndAnUnfinishedBodyTimesOut() async throws {
        let address = try await start(idleTimeout: .milliseconds(300), requestTimeout: .milliseconds(300))
        let idleClosed = try await within("the idle close", .seconds(5)) {
            try await HTTPTestClient.connect(to: address) { client in
                _ = try await client.request(.GET, "/hello")
                return try await client.closedByServer()
            }
        }
        XCTAssertTrue(idleClosed)
        let unfinishedClosed = try await within("the request deadline", .seconds(5)) {
            try await HTTPTestClient.connect(to: address) { client in
                // Declares 100 bytes, sends 10 and stops.
                var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/echo")
                head.headers.add(name: "Content-Length", value: "100")
                try await client.sendRaw([.head(head), .body(.byteBuffer(ByteBuffer(string: "0123456789")))])
                return try await client.closedByServer()
            }
        }
        XCTAssertTrue(unfinishedClosed)
    }

    func testGracefulShutdownClosesIdleConnectionsAndFinishesTheOneBeingAnswered() async throws {
        let (go, release) = AsyncStream.makeStream(of: Void.self)
        let (started, startedSink) = AsyncStream.makeStream(of: Void.self)
        let (answered, answeredSink) = AsyncStream.makeStream(of: Void.self)
        let address = try await start(routes: Self.routes(slow: go, started: startedSink))
        let group = try XCTUnwrap(self.group)
        let run = try XCTUnwrap(self.run)
        let (idle, busy) = try await within("shutdown with an idle and a busy connection") {
            async let idle: Bool = HTTPTestClient.connect(to: address) { client in
                _ = try await client.request(.GET, "/hello")
                answeredSink.yield()
                return try await client.closedByServer()
            }
            async let busy = HTTPTestClient.connect(to: address) { try await $0.request(.GET, "/slow") }
            for await _ in answered { break }
            for await _ in started { break }
            await group.triggerGracefulShutdown()
            // The idle connection closes while the slow request is still being answered.
            let idleClosed = try await idle
            release.yield()
            let answer = try await busy
            try await run.value
            return (idleClosed, answer)
        }
        XCTAssertTrue(idle, "an idle keep-alive connection is closed at shutdown")
        XCTAssertEqual(busy.status, .ok)
        XCTAssertEqual(busy.body, "finally\n")
        XCTAssertEqual(busy.headers.first(name: "connection"), "close")
    }
}
