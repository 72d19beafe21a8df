import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseTransport

/// Everything an agent is told at start. Each default is declared here once; the CLI shows and uses these.
public struct AgentConfiguration: Sendable {
    /// Coordinators to try, in order, round robin.
    public var coordinators: [Endpoint]
    public var secret: String?
    /// TLS towards the coordinators (this host's certificate, key and the cluster CA); nil: plaintext.
    public var tls: TLSSettings?
    /// This host's name in the cluster.
    public var host: String
    /// This host's tunnel endpoint.
    public var underlay: IPv4Address
    /// Networks this host serves; the local API opens once all are configured.
    public var networks: [String]
    /// The local API's unix socket.
    public var socketPath: String
    /// Group that may use the socket (mode 0660); nil keeps root's group.
    public var socketGroup: String?
    /// Where the agent records what it handed out (leases.json) and the coordinator store it last saw.
    public var stateDirectory: String
    /// Remove what the agent built (containers' veths, tunnels, bridges) when it stops.
    public var teardownOnStop: Bool
    /// Heartbeat period; nil: a third of the shortest lease TTL, within `derivedHeartbeatRange`.
    public var heartbeatInterval: Duration?
    /// First and largest pause between reconnect attempts (exponential, with jitter).
    public var reconnectDelay: ClosedRange<Duration>
    /// Addresses tried per request when probes keep finding them in use.
    public var maxProbeAttempts: Int
    /// Where Docker's remote IPAM plugin API is served (HTTP on a unix socket); nil: not served. It opens at start,
    /// before the networks are ready, so that Docker gets a clear error instead of a missing plugin meanwhile.
    public var dockerPluginSocket: String?
    /// The full probe of an address before it is first handed out (RFC 5227's timing unless set).
    public var probe: ARPProbeOptions
    /// The brief re-check of an address from the pool right before it is handed out.
    public var recheck: ARPProbeOptions
    /// Addresses per network leased and fully probed ahead of demand, so that a container gets an address without
    /// waiting for a full probe; 0 turns the pool off (every request then probes in full).
    public var poolSize: Int
    /// How often every served network is re-verified and repaired when it drifted (jittered ±20 %); nil: never
    /// (only at join, reconnect and peer changes).
    public var resyncInterval: Duration?

    /// A coordinator on this host at the default port.
    public static let defaultCoordinators = [Endpoint(host: "127.0.0.1", port: Endpoint.defaultPort)]
    public static let defaultSocketPath = "/run/netlease/agent.sock"
    public static let defaultStateDirectory = "/var/lib/netlease-agent"
    public static let defaultReconnectDelay: ClosedRange<Duration> = .milliseconds(200)...(.seconds(10))
    public static let defaultMaxProbeAttempts = 8
    /// A full probe takes 4-6 s and an attach from the pool about 0.4 s: 12 cover the back-to-back attaches of the
    /// time the first replacements take (docs/OPERATIONS.md, measured with the demo).
    public static let defaultPoolSize = 12
    /// Fills of one network's pool in flight at once (each is one lease and one full probe: waiting, not work).
    public static let maximumParallelFills = 16
    /// The pools of all hosts serving a network hold at most 1/this of its free addresses (docs/OPERATIONS.md).
    public static let poolShareDivisor = 4
    public static let defaultResyncInterval: Duration = .seconds(30)

    /// A derived heartbeat period stays within this range, whatever the lease TTLs.
    public static let derivedHeartbeatRange: ClosedRange<Duration> = .seconds(1)...(.seconds(30))
    /// A heartbeat may take at least this long to be answered before the session is given up, even when the period
    /// is shorter (tests beat every 100 ms).
    static let minimumHeartbeatTimeout: Duration = .seconds(2)

    public init(
        coordinators: [Endpoint] = defaultCoordinators,
        secret: String?,
        host: String,
        underlay: IPv4Address,
        networks: [String],
        socketPath: String = defaultSocketPath,
        socketGroup: String? = nil,
        stateDirectory: String = defaultStateDirectory,
        teardownOnStop: Bool = false,
        heartbeatInterval: Duration? = nil,
        reconnectDelay: ClosedRange<Duration> = defaultReconnectDelay,
        maxProbeAttempts: Int = defaultMaxProbeAttempts,
        tls: TLSSettings? = nil,
        dockerPluginSocket: String? = nil,
        probe: ARPProbeOptions = ARPProbeOptions(),
        recheck: ARPProbeOptions = .recheck,
        poolSize: Int = defaultPoolSize,
        resyncInterval: Duration? = defaultResyncInterval
    ) {
        self.coordinators = coordinators
        self.secret = secret
        self.host = host
        self.underlay = underlay
        self.networks = networks
        self.socketPath = socketPath
        self.socketGroup = socketGroup
        self.stateDirectory = stateDirectory
        self.teardownOnStop = teardownOnStop
        self.heartbeatInterval = heartbeatInterval
        self.reconnectDelay = reconnectDelay
        self.maxProbeAttempts = maxProbeAttempts
        self.tls = tls
        self.dockerPluginSocket = dockerPluginSocket
        self.probe = probe
        self.recheck = recheck
        self.poolSize = max(0, poolSize)
        self.resyncInterval = resyncInterval
    }
}
