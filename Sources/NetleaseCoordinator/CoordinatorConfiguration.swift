import NetleaseCore
import NetleaseTransport

/// Everything a coordinator is told at start. Each default is declared once: the coordinator's own here, the
/// transport's limits (connections, idle and line timeouts) in `LineServer.Configuration`, the port in `Endpoint`.
/// The CLI and the test harness take theirs from `defaults`.
public struct CoordinatorConfiguration: Sendable {
    public static let defaultPort = Endpoint.defaultPort
    public static let defaultAuthTimeout: Duration = .seconds(10)

    public var host: String
    public var port: Int
    /// nil: no authentication (`--insecure`).
    public var secret: ClusterSecret?
    /// Read-only credentials (listing only); nil: none.
    public var readerSecret: ClusterSecret?
    public var maxConnections: Int
    /// A connection that sends nothing for this long is closed.
    public var idleTimeout: Duration
    /// A started request line must be finished within this time.
    public var lineTimeout: Duration
    /// A connection must authenticate within this time after it was accepted (TLS handshake included), or it is
    /// closed; requests before AUTH (PING too) do not extend it. Only with a secret.
    public var authTimeout: Duration
    /// Caps for unauthenticated (in all, per source address) and read-only connections (`ConnectionAdmission`);
    /// only with a secret.
    public var admission: ConnectionAdmission.Limits
    /// How often the reclaimer looks for lost hosts and finished cooldowns.
    public var reclaimInterval: Duration
    /// How often a watcher gets a keepalive event when nothing else happened.
    public var keepaliveInterval: Duration
    /// Failed AUTH attempts after which a connection is closed.
    public var maxAuthFailures: Int
    /// TLS with client certificates: every connection must present a certificate signed by the CA before it is
    /// greeted. nil: plaintext. The secret still gates state changes either way, and the certificate binds what it
    /// may grant (`tlsAdminSubjects`; Authorization.swift).
    public var tls: TLSSettings?
    /// With `tls`: the certificate names (a subject CN or a DNS subjectAltName) whose holders may authenticate with
    /// the cluster secret. Every other certificate authenticates only the host it names (with that host's
    /// credential) or as a reader. Empty: no certificate is an admin's.
    public var tlsAdminSubjects: Set<String>

    public init(
        host: String = "0.0.0.0",
        port: Int = CoordinatorConfiguration.defaultPort,
        secret: ClusterSecret?,
        readerSecret: ClusterSecret? = nil,
        maxConnections: Int = LineServer.Configuration.defaultMaxConnections,
        idleTimeout: Duration = LineServer.Configuration.defaultIdleTimeout,
        lineTimeout: Duration = LineServer.Configuration.defaultLineTimeout,
        authTimeout: Duration = CoordinatorConfiguration.defaultAuthTimeout,
        admission: ConnectionAdmission.Limits = ConnectionAdmission.Limits(),
        reclaimInterval: Duration = .seconds(1),
        keepaliveInterval: Duration = .seconds(20),
        maxAuthFailures: Int = 3,
        tls: TLSSettings? = nil,
        tlsAdminSubjects: Set<String> = []
    ) {
        self.host = host
        self.port = port
        self.secret = secret
        self.readerSecret = readerSecret
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.lineTimeout = lineTimeout
        self.authTimeout = authTimeout
        self.admission = admission
        self.reclaimInterval = reclaimInterval
        self.keepaliveInterval = keepaliveInterval
        self.maxAuthFailures = maxAuthFailures
        self.tls = tls
        self.tlsAdminSubjects = tlsAdminSubjects
    }

    /// Why these limits cannot work together, or nil. Credential-less clients may never fill the slots
    /// credentialed ones need: the unauthenticated and reader caps together stay below the connection cap.
    public var limitsProblem: String? {
        if authTimeout <= .zero { return "the authentication timeout must be positive" }
        let caps = admission
        if caps.maxUnauthenticated < 1 || caps.maxUnauthenticatedPerSource < 1 || caps.maxReaders < 0 {
            return "the unauthenticated caps must be positive and the reader cap not negative"
        }
        if caps.maxUnauthenticatedPerSource > caps.maxUnauthenticated {
            return "the per-source unauthenticated cap (\(caps.maxUnauthenticatedPerSource)) exceeds the "
                + "unauthenticated cap (\(caps.maxUnauthenticated))"
        }
        if secret != nil && caps.maxUnauthenticated + caps.maxReaders >= maxConnections {
            return "the unauthenticated cap (\(caps.maxUnauthenticated)) and the reader cap (\(caps.maxReaders)) "
                + "together must stay below the connection cap (\(maxConnections)), or clients without an admin "
                + "or host credential could take every slot"
        }
        return nil
    }

    /// The defaults, for help texts.
    public static let defaults = CoordinatorConfiguration(secret: nil)
}
