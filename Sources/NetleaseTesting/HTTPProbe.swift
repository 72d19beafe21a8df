import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 GET for tests (metrics, health, Prometheus's API), over NIO's own client codec: TCP or a unix
/// socket.
public enum HTTPProbe {
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: String
    }

    /// GETs `target` (path and query) from `address` on a connection of its own.
    public static func get(_ target: String, from address: SocketAddress) async throws -> Response {
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
            let head = HTTPRequestHead(
                version: .http1_1,
                method: .GET,
                uri: target,
                headers: HTTPHeaders([("Host", "localhost"), ("Connection", "close")])
            )
            try await outbound.write(contentsOf: [.head(head), .end(nil)])
            var response: Response?
            for try await part in inbound {
                switch part {
                case .head(let head):
                    response = Response(status: Int(head.status.code), headers: head.headers, body: "")
                case .body(let buffer):
                    response?.body += String(buffer: buffer)
                case .end:
                    if let response { return response }
                }
            }
            throw ProbeError(description: "the connection to \(address) closed before a whole response")
        }
    }

    /// GETs `target` from 127.0.0.1:`port`.
    public static func get(_ target: String, port: Int) async throws -> Response {
        try await get(target, from: SocketAddress(ipAddress: "127.0.0.1", port: port))
    }

    struct ProbeError: Error, CustomStringConvertible {
        var description: String
    }
}
