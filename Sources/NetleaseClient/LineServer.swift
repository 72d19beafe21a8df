import Logging
import NIOCore
import NIOPosix
import NetleaseCore
import NetleaseWire
import ServiceLifecycle
import Synchronization

/// The server side of the line transport, shared by the coordinator (TCP) and the agent's local API (unix socket).
///
/// One child task per connection inside a discarding task group; each connection's task catches its own errors,
/// so one bad client never stops the server or stalls another. The transport frames lines and enforces the length
/// cap, the idle timeout and the connection cap; what a connection says is up to the handler. A slow reader only
/// stalls itself: writes wait for its socket to drain, and meanwhile nothing more is read from it.
public struct LineServer: Sendable {
    public enum Address: Sendable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case unix(path: String)

        public var description: String {
            switch self {
            case .tcp(let host, let port): "\(host):\(port)"
            case .unix(let path): path
            }
        }
    }

    public struct Configuration: Sendable {
        public var address: Address
        public var maxConnections: Int
        /// Close a connection that sends nothing for this long (handlers may lift it, e.g. for event streams).
        public var idleTimeout: TimeAmount
        /// Close a connection whose started line is not finished within this time: a client trickling bytes
        /// (slowloris) cannot hold a connection slot longer than this.
        public var lineTimeout: TimeAmount
        public var maxLineBytes: Int

        public init(address: Address, maxConnections: Int = 4096, idleTimeout: TimeAmount = .seconds(600),
                    lineTimeout: TimeAmount = .seconds(30), maxLineBytes: Int = WireLimits.maxLineBytes) {
            self.address = address
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.lineTimeout = lineTimeout
            self.maxLineBytes = maxLineBytes
        }
    }

    public let configuration: Configuration
    let group: any EventLoopGroup
    let logger: Logger
    public let counters = ConnectionCounters()

    public init(configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
    }

    static let idleHandlerName = "netlease.idle"

    /// Binds, reports the bound address, and serves until graceful shutdown (or cancellation).
    /// `handler` runs once per accepted connection; `refuse` produces the line sent to connections over the cap.
    public func run(
        onListening: @Sendable (SocketAddress?) -> Void = { _ in },
        handler: @escaping @Sendable (LineConnection) async throws -> Void
    ) async throws {
        let idle = configuration.idleTimeout
        let lineTimeout = configuration.lineTimeout
        let maxLineBytes = configuration.maxLineBytes
        let initializer: @Sendable (Channel) -> EventLoopFuture<NIOAsyncChannel<LineFrame, ByteBuffer>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(IdleStateHandler(readTimeout: idle), name: LineServer.idleHandlerName)
                try sync.addHandler(IdleConnectionCloser())
                try sync.addHandler(PartialLineDeadline(timeout: lineTimeout))
                try sync.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxLineBytes)))
                return try NIOAsyncChannel<LineFrame, ByteBuffer>(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 64)))
            }
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // A client may send its requests and shut down its write side: it still gets every reply.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        let server: NIOAsyncChannel<NIOAsyncChannel<LineFrame, ByteBuffer>, Never>
        do {
            switch configuration.address {
            case .tcp(let host, let port):
                server = try await bootstrap.childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .bind(host: host, port: port, childChannelInitializer: initializer)
            case .unix(let path):
                server = try await bootstrap.bind(
                    unixDomainSocketPath: path, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            }
        } catch {
            throw NetleaseError(.unavailable, "cannot listen on \(configuration.address): \(error)")
        }
        onListening(server.channel.localAddress)
        let counters = self.counters
        let maxConnections = configuration.maxConnections
        let logger = self.logger
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                try await server.executeThenClose { inbound in
                    for try await channel in inbound {
                        let open = counters.open.add(1, ordering: .relaxed).newValue
                        counters.total.add(1, ordering: .relaxed)
                        tasks.addTask {
                            defer { counters.open.subtract(1, ordering: .relaxed) }
                            let peer = channel.channel.remoteAddress.map { "\($0)" } ?? "local"
                            do {
                                try await channel.executeThenClose { lines, outbound in
                                    let connection = LineConnection(
                                        lines: lines.makeAsyncIterator(), outbound: outbound, channel: channel.channel,
                                        peer: peer)
                                    if open > maxConnections {
                                        counters.refused.add(1, ordering: .relaxed)
                                        let refusal = NetleaseError(.overloaded, "too many connections; try again later")
                                        try await connection.write(Reply.error(refusal).rendered)
                                        return
                                    }
                                    try await handler(connection)
                                }
                            } catch {
                                logger.debug("connection ended with an error", metadata: ["peer": "\(peer)", "error": "\(error)"])
                            }
                        }
                    }
                }
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }
}

/// Connection counts of one server.
public final class ConnectionCounters: Sendable {
    public let open = Atomic<Int>(0)
    public let total = Atomic<Int>(0)
    public let refused = Atomic<Int>(0)

    public init() {}
}

/// One accepted connection, used by the handler's task only.
public final class LineConnection {
    private var lines: NIOAsyncChannelInboundStream<LineFrame>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let channel: any Channel
    public let peer: String

    init(lines: NIOAsyncChannelInboundStream<LineFrame>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
         channel: any Channel, peer: String) {
        self.lines = lines
        self.outbound = outbound
        self.channel = channel
        self.peer = peer
    }

    /// The next frame, or nil when the peer closed.
    public func next() async throws -> LineFrame? { try await lines.next() }

    /// Writes text (already LF-terminated) and waits until the socket accepted it.
    public func write(_ text: String) async throws { try await outbound.write(ByteBuffer(string: text)) }

    /// Hands the inbound side to `body` (for a task that only watches for the peer going away) while this task
    /// keeps writing.
    public func takeInbound() -> NIOAsyncChannelInboundStream<LineFrame>.AsyncIterator { lines }

    /// Lifts the idle timeout: for connections that turned into event streams and legitimately send nothing.
    public func liftIdleTimeout() async {
        _ = try? await channel.pipeline.removeHandler(name: LineServer.idleHandlerName).get()
    }
}

/// Closes a connection whose started line stays unfinished for `timeout`. It only looks at whether the bytes read
/// so far end in LF; the decoder behind it does the framing.
final class PartialLineDeadline: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if buffer.readableBytesView.last == UInt8(ascii: "\n") {
            deadline?.cancel()
            deadline = nil
        } else if deadline == nil, buffer.readableBytes > 0 {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: timeout) {
                loopBound.value.close(promise: nil)
            }
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
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
