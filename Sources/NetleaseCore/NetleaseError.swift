/// Stable, machine-readable error codes. They appear on the wire as `ERR <code> <message>` and in the CLI as
/// `error: <code>: <message>`; scripts depend on them, so existing codes never change meaning.
public enum ErrorCode: String, Sendable, CaseIterable {
    case badRequest = "bad-request"
    case authRequired = "auth-required"
    case authFailed = "auth-failed"
    /// The credential or claim does not allow the request: read-only credentials asking for a change, a host
    /// credential acting for another host, an agent's claim naming a network its host did not join.
    case forbidden = "forbidden"
    case unknownNetwork = "unknown-network"
    case poolExhausted = "pool-exhausted"
    case staleEpoch = "stale-epoch"
    case notFound = "not-found"
    case conflict = "conflict"
    case storage = "storage"
    case overloaded = "overloaded"
    case unavailable = "unavailable"
    /// This coordinator does not lead (a standby, or a leader that lost its term): the message starts with
    /// `leader=HOST:PORT` when the leader is known.
    case notLeader = "not-leader"
    /// `netlease doctor` found failed checks.
    case checkFailed = "check-failed"
    case internalError = "internal"
}

/// The one error type of netlease's domain: a stable code, a message for people, an optional cause.
public struct NetleaseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var cause: String?

    public init(_ code: ErrorCode, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { "\(code.rawValue): \(message)" }

    public static func badRequest(_ message: String) -> NetleaseError { .init(.badRequest, message) }
    public static func notFound(_ message: String) -> NetleaseError { .init(.notFound, message) }
    public static func conflict(_ message: String) -> NetleaseError { .init(.conflict, message) }
    public static func unknownNetwork(_ name: String) -> NetleaseError {
        .init(.unknownNetwork, "no network named '\(name)'")
    }
}
