import Logging
import NIOCore
import NIOPosix
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseWire
import ServiceLifecycle

/// The coordinator's TCP service. Per connection: greeting, then one reply per request line, in order; a `WATCH`
/// turns the connection into an event stream. Framing, caps and timeouts are `LineServer`'s; parsing is
/// `NetleaseWire`'s; acting is `RequestHandler`'s.
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
        try await server.run(onListening: { address in
            if let address { onListening(address) }
            logger.info("coordinator listening", metadata: [
                "address": "\(address.map { "\($0)" } ?? "?")",
                "auth": "\(configuration.secret == nil ? "disabled" : "required")",
                "tls": "\(configuration.tls == nil ? "off" : "client certificates required")",
            ])
        }, handler: { connection in
            try await serve(connection)
        })
        logger.info("coordinator stopped")
    }

    private func serve(_ connection: LineConnection) async throws {
        var session = Session(authenticated: configuration.secret == nil)
        try await connection.write(Greeting(authRequired: configuration.secret != nil).line + "\n")
        while let frame = try await connection.next() {
            switch frame {
            case .tooLong:
                let error = NetleaseError.badRequest(
                    "line longer than \(WireLimits.maxLineBytes) bytes; closing the connection")
                try await connection.write(Reply.error(error).rendered)
                logger.notice("closed a connection that sent an oversized line", metadata: ["peer": "\(connection.peer)"])
                return
            case .line(let text):
                if text.isEmpty { continue }  // blank lines are ignored: handy when typing by hand
                let reply = await handler.respond(to: text, session: &session)
                try await connection.write(reply.rendered)
                if let watch = session.watch {
                    try await stream(watch, to: connection)
                    return
                }
                if session.closeRequested { return }
            }
        }
    }

    /// Forwards events until the watcher is cut off, the peer goes away (a write fails) or the server stops.
    private func stream(_ watch: EventHub.Subscription, to connection: LineConnection) async throws {
        await connection.liftIdleTimeout()
        defer { events.unsubscribe(watch.id) }
        let interval = keepaliveInterval
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: interval)
                    watch.inject(.keepalive)
                }
            }
            for await event in watch.events {
                try await connection.write(event.rendered)
            }
            group.cancelAll()
        }
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
