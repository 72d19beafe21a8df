import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP/1.1 client for the tests, built from NIO's own client codec: one connection, requests in turn.
final class HTTPTestClient {
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: String
    }

    private var parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    private init(
        parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) {
        self.parts = parts
        self.outbound = outbound
    }

    /// Connects to `address` (TCP or a unix socket), runs `body`, then closes.
    static func connect<T>(
        to address: SocketAddress,
        _ body: (HTTPTestClient) async throws -> T
    ) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address) {
            channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                    wrappingChannelSynchronously: channel
                )
            }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(HTTPTestClient(parts: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    /// Sends one request (the body in `chunks`, chunked when no `Content-Length` is given) and reads its response.
    func request(
        _ method: HTTPMethod,
        _ uri: String,
        headers: [(String, String)] = [],
        chunks: [String] = []
    ) async throws -> Response {
        try await send(method, uri, headers: headers, chunks: chunks)
        return try await response()
    }

    func send(
        _ method: HTTPMethod,
        _ uri: String,
        headers: [(String, String)] = [],
        chunks: [String] = []
    )
        async throws
    {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
        head.headers.replaceOrAdd(name: "Host", value: "test")
        var parts: [HTTPClientRequestPart] = [.head(head)]
        parts += chunks.map { .body(.byteBuffer(ByteBuffer(string: $0))) }
        parts.append(.end(nil))
        try await outbound.write(contentsOf: parts)
    }

    func response() async throws -> Response {
        var response: Response?
        while let part = try await parts.next() {
            switch part {
            case .head(let head):
                if head.status == .continue { continue }
                response = Response(status: head.status, headers: head.headers, body: "")
            case .body(let buffer):
                response?.body += String(buffer: buffer)
            case .end:
                if let response { return response }
            }
        }
        throw HTTPTestError.closed
    }

    /// Waits until the server closes the connection; false if it sent something instead.
    func closedByServer() async throws -> Bool {
        (try await parts.next()) == nil
    }
}

enum HTTPTestError: Error {
    case closed
    case timedOut(String)
}

/// Runs `body`, or fails once `timeout` has passed (`body` is cancelled).
func within<T: Sendable>(
    _ what: String,
    _ timeout: Duration = .seconds(10),
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let result = try await group.next(), let value = result else {
            throw HTTPTestError.timedOut("\(what): not done within \(timeout)")
        }
        return value
    }
}

extension HTTPTestClient {
    /// Writes request parts as given (e.g. a head and part of its body).
    func sendRaw(_ parts: [HTTPClientRequestPart]) async throws {
        try await outbound.write(contentsOf: parts)
    }
}
