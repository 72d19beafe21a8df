import NIOCore
import NIOHTTP1

/// One complete HTTP request as the server's handlers see it: the head and the whole body (at most the server's
/// `maxBodyBytes`).
public struct HTTPServerRequest: Sendable {
    public var method: HTTPMethod
    /// The request target as sent, e.g. `/metrics?x=1`.
    public var uri: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(
        method: HTTPMethod,
        uri: String,
        version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = HTTPHeaders(),
        body: ByteBuffer = ByteBuffer()
    ) {
        self.method = method
        self.uri = uri
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// The target without its query: what routes match.
    public var path: Substring {
        uri.firstIndex(of: "?").map { uri[..<$0] } ?? uri[...]
    }

    /// The query after `?`, without it; nil when there is none.
    public var query: Substring? {
        uri.firstIndex(of: "?").map { uri[uri.index(after: $0)...] }
    }

    /// The body as UTF-8 text (invalid bytes repaired).
    public var bodyText: String { String(buffer: body) }
}
