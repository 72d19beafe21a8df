import NIOCore
import NetleaseCore
import NetleaseWire

/// What one connection knows about itself: who it authenticated as, and what it asked for (QUIT, WATCH).
public struct Session: Sendable {
    public var authenticated: Bool
    /// Authenticated with the read-only secret: changes are refused.
    public var readOnly = false
    /// Authenticated with a host credential: the connection acts only as this host (Authorization.swift).
    public var host: String?
    /// With `host`: how many times its credential had been revoked or replaced when this connection authenticated
    /// (`HostSessions`); a later revocation makes its JOINs fail.
    var hostRevocations = 0
    /// With TLS: the names the client's certificate was issued to (its subject's CN and its DNS subjectAltNames);
    /// nil on a plaintext connection. They bind what AUTH may grant (Authorization.swift).
    public var certificateNames: [String]?
    public var authFailures = 0
    public var closeRequested = false
    /// Set by WATCH: from now on the connection carries these events.
    public var watch: EventHub.Subscription?
    /// The connection's channel: closed when the host credential it authenticated with is revoked or replaced.
    var channel: (any Channel)?

    public init(authenticated: Bool) { self.authenticated = authenticated }
}
