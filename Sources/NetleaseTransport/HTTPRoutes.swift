import NIOHTTP1

/// Which handler answers which request: exact paths, one handler per method. A path no route names is answered
/// 404; a known path asked with another method, 405 with an `Allow` header.
public struct HTTPRoutes: Sendable {
    /// Answers one request. A thrown error becomes a 500 (logged); the connection stays usable.
    public typealias Handler = @Sendable (HTTPServerRequest) async throws -> HTTPServerResponse

    private var handlers: [String: [(method: HTTPMethod, handler: Handler)]] = [:]

    public init() {}

    /// Adds (or replaces) the handler of `method` on `path`.
    public mutating func add(_ method: HTTPMethod, _ path: String, _ handler: @escaping Handler) {
        var entries = handlers[path, default: []]
        entries.removeAll { $0.method == method }
        entries.append((method, handler))
        handlers[path] = entries
    }

    /// Answers `request` through its route, or with 404 or 405.
    func respond(to request: HTTPServerRequest) async throws -> HTTPServerResponse {
        guard let entries = handlers[String(request.path)] else {
            return .text(.notFound, "no such path: \(request.path)\n")
        }
        guard let entry = entries.first(where: { $0.method == request.method }) else {
            let allowed = entries.map(\.method.rawValue).joined(separator: ", ")
            var response = HTTPServerResponse.text(
                .methodNotAllowed,
                "\(request.method.rawValue) not allowed; use \(allowed)\n"
            )
            response.headers.add(name: "Allow", value: allowed)
            return response
        }
        return try await entry.handler(request)
    }
}
