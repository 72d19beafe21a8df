import NetleaseCore

/// A reply to one request. Exactly one per request, in request order.
///
/// ```
/// OK *( SP field )                                   ; single result
/// OK count=N *( SP field ) LF N*( TAG *( SP field ) LF )   ; N records follow, each on its own line
/// ERR SP code SP message                             ; code from ErrorCode, message is free text
/// ```
public enum Reply: Sendable, Equatable {
    case ok(Fields)
    case list(header: Fields, tag: String, records: [Fields])
    case error(NetleaseError)

    public static let okTag = "OK"
    public static let errorTag = "ERR"

    /// All lines of the reply, each without terminator.
    public var lines: [String] {
        switch self {
        case .ok(let fields):
            return [LineFormat.render(Line(Reply.okTag, fields))]
        case .list(let header, let tag, let records):
            var first = Fields()
            first.append("count", String(records.count))
            for (k, v) in header.pairs where k != "count" { first.append(k, v) }
            return [LineFormat.render(Line(Reply.okTag, first))] + records.map { LineFormat.render(Line(tag, $0)) }
        case .error(let error):
            return ["\(Reply.errorTag) \(error.code.rawValue) \(LineFormat.sanitizeMessage(error.message))"]
        }
    }

    /// The reply as bytes ready to send: every line LF-terminated.
    public var rendered: String {
        var out = ""
        for line in lines {
            out += line
            out += "\n"
        }
        return out
    }

    /// Reads the head line of a reply. For `OK` with a `count` field the caller reads that many record lines and
    /// passes them to `records(_:)`.
    public enum Head: Sendable, Equatable {
        case ok(Fields, recordCount: Int?)
        case error(NetleaseError)
    }

    public static func parseHead(_ text: Substring) throws -> Head {
        var line = text
        if line.hasSuffix("\r") { line = line.dropLast() }
        if line.hasPrefix("\(errorTag) ") {
            let rest = line.dropFirst(errorTag.count + 1)
            let space = rest.firstIndex(of: " ") ?? rest.endIndex
            let codeText = String(rest[..<space])
            let message = space < rest.endIndex ? String(rest[rest.index(after: space)...]) : ""
            guard let code = ErrorCode(rawValue: codeText) else {
                return .error(NetleaseError(.internalError, "unknown error code '\(codeText)': \(message)"))
            }
            return .error(NetleaseError(code, message))
        }
        let parsed = try LineFormat.parse(line, maxBytes: WireLimits.maxReplyLineBytes)
        guard parsed.verb == okTag else {
            throw NetleaseError(.internalError, "unexpected reply line '\(line.prefix(80))'")
        }
        let count = try parsed.fields.int("count")
        if let count, count < 0 || count > 100_000_000 {
            throw NetleaseError(.internalError, "reply count \(count) out of range")
        }
        return .ok(parsed.fields, recordCount: count.map { Int($0) })
    }

    public static func parseRecord(_ text: Substring, tag: String) throws -> Fields {
        let parsed = try LineFormat.parse(text, maxBytes: WireLimits.maxReplyLineBytes)
        guard parsed.verb == tag else {
            throw NetleaseError(.internalError, "expected a \(tag) record, got '\(text.prefix(80))'")
        }
        return parsed.fields
    }
}

/// The greeting the server sends first on every connection: `NETLEASE version=1 auth=required`.
public struct Greeting: Sendable, Equatable {
    public var version: Int
    public var authRequired: Bool

    public init(version: Int = WireLimits.protocolVersion, authRequired: Bool) {
        self.version = version
        self.authRequired = authRequired
    }

    public var line: String {
        LineFormat.render(
            Line(
                WireLimits.protocolName,
                [
                    "version": String(version), "auth": authRequired ? "required" : "none",
                ]
            )
        )
    }

    public init(line text: Substring) throws {
        let parsed = try LineFormat.parse(text, maxBytes: WireLimits.maxReplyLineBytes)
        guard parsed.verb == WireLimits.protocolName, let version = try parsed.fields.int("version") else {
            throw NetleaseError(.internalError, "not a netlease server: greeting was '\(text.prefix(80))'")
        }
        self.version = Int(version)
        authRequired = parsed.fields["auth"] != "none"
    }
}
