import Logging
import NIOCore
import NIOPosix
import NetleaseClient
import NetleaseCore
import NetleaseStore
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
    /// How often a watcher gets a keepalive event when nothing else happened.
    let keepaliveInterval: Duration

    public init(
        configuration: CoordinatorConfiguration, store: any LeaseStore, events: EventHub = EventHub(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "netlease.coordinator"), keepaliveInterval: Duration = .seconds(20),
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        server = LineServer(
            configuration: .init(
                address: .tcp(host: configuration.host, port: configuration.port),
                maxConnections: configuration.maxConnections,
                idleTimeout: .seconds(configuration.idleTimeoutSeconds),
                lineTimeout: .seconds(configuration.lineTimeoutSeconds),
                tls: configuration.tls),
            group: group, logger: logger)
        handler = RequestHandler(store: store, secret: configuration.secret, readerSecret: configuration.readerSecret,
                                 counters: ServerCounters(connections: server.counters), events: events,
                                 maxAuthFailures: configuration.maxAuthFailures, logger: logger)
        self.events = events
        self.logger = logger
        self.keepaliveInterval = keepaliveInterval
        self.onListening = onListening
    }

    public func run() async throws {
        let handler = self.handler
        let events = self.events
        let keepalive = TimeAmount(keepaliveInterval)
        let authRequired = configuration.secret != nil
        let logger = self.logger
        try await server.runDirect(onListening: { address in
            if let address { onListening(address) }
            logger.info("coordinator listening", metadata: [
                "address": "\(address.map { "\($0)" } ?? "?")",
                "auth": "\(configuration.secret == nil ? "disabled" : "required")",
                "tls": "\(configuration.tls == nil ? "off" : "client certificates required")",
            ])
        }, makeHandler: { connection in
            CoordinatorConnection(handler: handler, events: events, keepaliveInterval: keepalive,
                                  authRequired: authRequired, handshake: connection.handshake, logger: logger)
        })
        logger.info("coordinator stopped")
    }
}

/// Ends lost hosts' leases and finished cooldowns on a fixed interval.
public struct Reclaimer: Service {
    let store: any LeaseStore
    let events: EventHub
    let interval: Duration
    let logger: Logger

    public init(store: any LeaseStore, events: EventHub = EventHub(), interval: Duration = .seconds(1),
                logger: Logger = Logger(label: "netlease.reclaimer")) {
        self.store = store
        self.events = events
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        // Sleeping is cancelled by graceful shutdown, so the reclaimer never delays a stop by an interval.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await reclaimOnce()
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One pass: reclaims, logs and announces hosts newly lost.
    public func reclaimOnce() async {
        do {
            let lost = try await store.reclaim()
            guard !lost.isEmpty else { return }
            let hosts = try await store.hosts()
            for host in hosts where lost.contains(host.name) {
                logger.warning("host missed heartbeats for its lease TTL: marked lost, leases moved to cooldown",
                               metadata: ["host": "\(host.name)"])
                events.publish(.host(host))
            }
        } catch {
            logger.error("reclaim failed", metadata: ["error": "\(error)"])
        }
    }
}
