import NIOCore
import NIOHTTP1

/// What a handler answers: status, headers and the whole body. The server sets `Content-Length` and
/// `Connection`; everything else is the handler's.
public struct HTTPServerResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A plain-text response; `contentType` may name another text format (e.g. Prometheus's).
    public static func text(
        _ status: HTTPResponseStatus,
        _ text: String,
        contentType: String = "text/plain; charset=utf-8"
    ) -> HTTPServerResponse {
        HTTPServerResponse(
            status: status,
            headers: HTTPHeaders([("Content-Type", contentType)]),
            body: ByteBuffer(string: text)
        )
    }
}
