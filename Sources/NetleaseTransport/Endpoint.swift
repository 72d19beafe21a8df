import NetleaseCore

/// `HOST:PORT` of a coordinator or a listening socket.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public static let defaultPort = 7420

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `HOST` (default port), `[V6]:PORT`.
    public init(parsing text: String, defaultPort: Int = Endpoint.defaultPort) throws {
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else { throw NetleaseError.badRequest("empty address; expected HOST:PORT") }
        var hostPart = trimmed
        var portPart: Substring?
        if trimmed.hasPrefix("["), let close = trimmed.firstIndex(of: "]") {
            hostPart = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            let rest = trimmed[trimmed.index(after: close)...]
            if rest.hasPrefix(":") {
                portPart = rest.dropFirst()
            } else if !rest.isEmpty {
                throw NetleaseError.badRequest("'\(text)' is not HOST:PORT")
            }
        } else if let colon = trimmed.lastIndex(of: ":") {
            guard trimmed.firstIndex(of: ":") == colon else {
                throw NetleaseError.badRequest("'\(text)' is not HOST:PORT (write IPv6 addresses as [ADDR]:PORT)")
            }
            hostPart = String(trimmed[..<colon])
            portPart = trimmed[trimmed.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { throw NetleaseError.badRequest("'\(text)' has no host; expected HOST:PORT") }
        var port = defaultPort
        if let portPart {
            guard let value = Int(portPart), (0...65535).contains(value) else {
                throw NetleaseError.badRequest("'\(portPart)' in '\(text)' is not a port (0-65535)")
            }
            port = value
        }
        self.init(host: hostPart, port: port)
    }

    /// Parses a comma-separated list of endpoints.
    public static func list(_ text: String) throws -> [Endpoint] {
        let endpoints = try text.split(separator: ",").map { try Endpoint(parsing: String($0)) }
        guard !endpoints.isEmpty else { throw NetleaseError.badRequest("no coordinator address given") }
        return endpoints
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let first = s.first, first.isWhitespace { s.removeFirst() }
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return String(s)
    }
}
