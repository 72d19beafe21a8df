import NetleaseCore
import NetleaseWire

/// What one connection knows about itself: who it authenticated as, and what it asked for (QUIT, WATCH).
public struct Session: Sendable {
    public var authenticated: Bool
    /// Authenticated with the read-only secret: changes are refused.
    public var readOnly = false
    public var authFailures = 0
    public var closeRequested = false
    /// Set by WATCH: from now on the connection carries these events.
    public var watch: EventHub.Subscription?

    public init(authenticated: Bool) { self.authenticated = authenticated }
}

// Access rules: checked once per request, in `RequestHandler.start`, before anything acts on the request.
extension RequestHandler {
    func checkAccess(_ request: Request, session: Session) throws {
        if !session.authenticated && !request.allowedBeforeAuth {
            throw NetleaseError(
                .authRequired,
                "\(request.verb.rawValue) needs an authenticated connection; send AUTH first"
            )
        }
        if session.readOnly && request.needsAdmin {
            throw NetleaseError(.forbidden, "\(request.verb.rawValue) needs admin credentials; these are read-only")
        }
    }

    /// AUTH: the cluster secret makes the session admin, the reader secret read-only. Without a configured secret
    /// every AUTH succeeds as admin. After `maxAuthFailures` wrong secrets the connection is closed.
    func authenticate(_ candidate: String, session: inout Session) throws -> Reply {
        guard let secret else {
            session.authenticated = true
            return .ok(["role": "admin"])
        }
        if !secret.matches(candidate), let readerSecret, readerSecret.matches(candidate) {
            session.authenticated = true
            session.readOnly = true
            return .ok(["role": "reader"])
        }
        guard secret.matches(candidate) else {
            session.authFailures += 1
            if session.authFailures >= maxAuthFailures { session.closeRequested = true }
            logger.warning("authentication failed", metadata: ["failures": "\(session.authFailures)"])
            throw NetleaseError(.authFailed, "wrong secret")
        }
        session.authenticated = true
        session.readOnly = false
        return .ok(["role": "admin"])
    }
}
