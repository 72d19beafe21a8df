import Logging
import NIOCore
import NIOPosix
import NetleaseCore
import NetleaseStore
import NetleaseTransport
import NetleaseWire
import ServiceLifecycle

/// The coordinator's TCP service. Per connection: greeting, then one reply per request line, in order (pipelined:
/// see `CoordinatorConnection`); a `WATCH` turns the connection into an event stream. Framing, caps and timeouts
/// are `LineServer`'s; parsing is `NetleaseWire`'s; acting is `RequestHandler`'s.
public struct CoordinatorServer: Service {
    let configuration: CoordinatorConfiguration
    let handler: RequestHandler
    let server: LineServer
    let logger: Logger
    let onListening: @Sendable (SocketAddress) -> Void
    public let events: EventHub

    public init(
        configuration: CoordinatorConfiguration,
        store: any LeaseStore,
        events: EventHub = EventHub(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: CoordinatorMetrics = CoordinatorMetrics(),
        logger: Logger = Logger(label: "netlease.coordinator"),
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        server = LineServer(
            configuration: .init(
                address: .tcp(host: configuration.host, port: configuration.port),
                maxConnections: configuration.maxConnections,
                idleTimeout: configuration.idleTimeout,
                lineTimeout: configuration.lineTimeout,
                tls: configuration.tls,
                // Without a secret every connection is authenticated from the start: nothing to tell apart.
                admission: configuration.secret == nil ? nil : configuration.admission
            ),
            group: group,
            logger: logger
        )
        handler = RequestHandler(
            store: store,
            secret: configuration.secret,
            readerSecret: configuration.readerSecret,
            counters: ServerCounters(connections: server.counters, admission: server.admission),
            events: events,
            maxAuthFailures: configuration.maxAuthFailures,
            metrics: metrics,
            tlsAdminSubjects: configuration.tlsAdminSubjects,
            logger: logger
        )
        self.events = events
        self.logger = logger
        self.onListening = onListening
    }

    /// Closes every client connection; new ones are still accepted.
    public func closeConnections() {
        server.closeConnections()
    }

    public func run() async throws {
        let handler = self.handler
        let events = self.events
        let keepalive = TimeAmount(configuration.keepaliveInterval)
        let authRequired = configuration.secret != nil
        let authTimeout = configuration.authTimeout
        let logger = self.logger
        try await server.runDirect(
            onListening: { address in
                if let address { onListening(address) }
                logger.info(
                    "coordinator listening",
                    metadata: [
                        "address": "\(address.map { "\($0)" } ?? "?")",
                        "auth": "\(configuration.secret == nil ? "disabled" : "required")",
                        "tls": "\(configuration.tls == nil ? "off" : "client certificates required")",
                    ]
                )
            },
            makeHandler: { connection in
                CoordinatorConnection(
                    handler: handler,
                    events: events,
                    keepaliveInterval: keepalive,
                    authRequired: authRequired,
                    handshake: connection.handshake,
                    ticket: connection.ticket,
                    authDeadline: authTimeout,
                    logger: logger
                )
            }
        )
        logger.info("coordinator stopped")
    }
}
