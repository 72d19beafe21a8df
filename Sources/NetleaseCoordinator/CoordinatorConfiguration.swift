import NetleaseCore
import NetleaseTransport

/// Everything a coordinator is told at start. Each default is declared once: the coordinator's own here, the
/// transport's limits (connections, idle and line timeouts) in `LineServer.Configuration`, the port in `Endpoint`.
/// The CLI and the test harness take theirs from `defaults`.
public struct CoordinatorConfiguration: Sendable {
    public static let defaultPort = Endpoint.defaultPort

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
        self.reclaimInterval = reclaimInterval
        self.keepaliveInterval = keepaliveInterval
        self.maxAuthFailures = maxAuthFailures
        self.tls = tls
        self.tlsAdminSubjects = tlsAdminSubjects
    }

    /// The defaults, for help texts.
    public static let defaults = CoordinatorConfiguration(secret: nil)
}
