import NetleaseClient
import NetleaseCore

public struct CoordinatorConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// nil: no authentication (`--insecure`).
    public var secret: ClusterSecret?
    /// Read-only credentials (listing only); nil: none.
    public var readerSecret: ClusterSecret?
    public var maxConnections: Int
    /// A connection that sends nothing for this long is closed.
    public var idleTimeoutSeconds: Int64
    /// A started request line must be finished within this time.
    public var lineTimeoutSeconds: Int64
    /// How often the reclaimer looks for lost hosts and finished cooldowns.
    public var reclaimIntervalMilliseconds: Int64
    /// Failed AUTH attempts after which a connection is closed.
    public var maxAuthFailures: Int
    /// TLS with client certificates: every connection must present a certificate signed by the CA before it is
    /// greeted. nil: plaintext. The secret still gates state changes either way.
    public var tls: TLSSettings?

    public init(
        host: String = "0.0.0.0", port: Int = 7420, secret: ClusterSecret?, readerSecret: ClusterSecret? = nil,
        maxConnections: Int = 4096,
        idleTimeoutSeconds: Int64 = 600, lineTimeoutSeconds: Int64 = 30, reclaimIntervalMilliseconds: Int64 = 1000,
        maxAuthFailures: Int = 3, tls: TLSSettings? = nil
    ) {
        self.host = host
        self.port = port
        self.secret = secret
        self.readerSecret = readerSecret
        self.maxConnections = maxConnections
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.lineTimeoutSeconds = lineTimeoutSeconds
        self.reclaimIntervalMilliseconds = reclaimIntervalMilliseconds
        self.maxAuthFailures = maxAuthFailures
        self.tls = tls
    }
}
