import Logging
import NIOCore
import NIOPosix
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseWire
import ServiceLifecycle

/// The coordinator's TCP server: one child task per connection inside a discarding task group; each connection's
/// task catches its own errors, so one bad client never stops the server or stalls another.
///
/// Per connection: greeting, then one reply per request line, in order. Framing (line split, length cap) is
/// `LineFrameDecoder`; parsing is `NetleaseWire`; acting is `RequestHandler`. A slow reader only stalls itself:
/// writes wait for its socket to drain, and while they wait nothing more is read from it.
public struct CoordinatorServer: Service {
    let configuration: CoordinatorConfiguration
    let handler: RequestHandler
    let counters: ServerCounters
    let logger: Logger
    let group: any EventLoopGroup
    let onListening: @Sendable (SocketAddress) -> Void

    public init(
        configuration: CoordinatorConfiguration, store: any LeaseStore,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "netlease.coordinator"),
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        let counters = ServerCounters()
        self.counters = counters
        handler = RequestHandler(store: store, secret: configuration.secret, counters: counters,
                                 maxAuthFailures: configuration.maxAuthFailures, logger: logger)
        self.logger = logger
        self.group = group
        self.onListening = onListening
    }

    public func run() async throws {
        let idle = TimeAmount.seconds(configuration.idleTimeoutSeconds)
        let counters = self.counters
        let maxConnections = configuration.maxConnections
        let server: NIOAsyncChannel<NIOAsyncChannel<LineFrame, ByteBuffer>, Never>
        do {
            server = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(IdleStateHandler(readTimeout: idle))
                        try sync.addHandler(IdleConnectionCloser())
                        try sync.addHandler(ByteToMessageHandler(LineFrameDecoder()))
                        return try NIOAsyncChannel<LineFrame, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 64)))
                    }
                }
        } catch {
            throw NetleaseError(.unavailable, "cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
        if let address = server.channel.localAddress { onListening(address) }
        logger.info("coordinator listening", metadata: [
            "address": "\(server.channel.localAddress.map { "\($0)" } ?? "?")",
            "auth": "\(configuration.secret == nil ? "disabled" : "required")",
        ])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        let total = counters.connections.add(1, ordering: .relaxed).newValue
                        counters.connectionsTotal.add(1, ordering: .relaxed)
                        tasks.addTask {
                            defer { counters.connections.subtract(1, ordering: .relaxed) }
                            await serve(connection, overCap: total > maxConnections)
                        }
                    }
                }
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
        logger.info("coordinator stopped")
    }

    private func serve(_ connection: NIOAsyncChannel<LineFrame, ByteBuffer>, overCap: Bool) async {
        let peer = connection.channel.remoteAddress.map { "\($0)" } ?? "?"
        do {
            try await connection.executeThenClose { inbound, outbound in
                if overCap {
                    counters.refusedConnections.add(1, ordering: .relaxed)
                    let refusal = Reply.error(NetleaseError(.overloaded, "too many connections; try again later"))
                    try await outbound.write(ByteBuffer(string: refusal.rendered))
                    return
                }
                var session = Session(authenticated: configuration.secret == nil)
                let greeting = Greeting(authRequired: configuration.secret != nil)
                try await outbound.write(ByteBuffer(string: greeting.line + "\n"))
                for try await frame in inbound {
                    switch frame {
                    case .tooLong:
                        let error = NetleaseError.badRequest(
                            "line longer than \(WireLimits.maxLineBytes) bytes; closing the connection")
                        try await outbound.write(ByteBuffer(string: Reply.error(error).rendered))
                        logger.notice("closed a connection that sent an oversized line", metadata: ["peer": "\(peer)"])
                        return
                    case .line(let text):
                        if text.isEmpty { continue }  // blank lines are ignored: handy with nc
                        let reply = await handler.respond(to: text, session: &session)
                        try await outbound.write(ByteBuffer(string: reply.rendered))
                        if session.closeRequested { return }
                    }
                }
            }
        } catch {
            logger.debug("connection ended with an error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }
}

/// Closes a connection on which nothing arrived for the idle timeout.
final class IdleConnectionCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// Ends lost hosts' leases and finished cooldowns on a fixed interval.
public struct Reclaimer: Service {
    let store: any LeaseStore
    let interval: Duration
    let logger: Logger

    public init(store: any LeaseStore, interval: Duration = .seconds(1),
                logger: Logger = Logger(label: "netlease.reclaimer")) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        // Sleeping is cancelled by graceful shutdown, so the reclaimer never delays a stop by an interval.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    for host in try await store.reclaim() {
                        logger.warning(
                            "host missed heartbeats for its lease TTL: marked lost, leases moved to cooldown",
                            metadata: ["host": "\(host)"])
                    }
                } catch {
                    logger.error("reclaim failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
