import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import NetleaseCore
import NetleaseWire
import ServiceLifecycle
import Synchronization

/// The server side of the line transport, shared by the coordinator (TCP) and the agent's local API (unix socket).
///
/// Two ways to serve: `run` gives each connection a child task inside a discarding task group (each task catches its
/// own errors, so one bad client never stops the server or stalls another; the agent's local API); `runDirect`
/// gives each connection a channel handler on its event loop (no task per connection; the coordinator). Either way
/// the transport frames lines (`LineFramer`) and enforces the length cap, the line deadline, the idle timeout and
/// the connection cap; what a connection says is up to the handler. A slow reader only stalls itself: writes wait
/// for its socket to drain, and meanwhile nothing more is read from it.
///
/// With `tls` set (TCP and `runDirect` only), every connection first completes a TLS handshake in which the client
/// presents a certificate signed by the configured CA; the handler is told when it succeeded and greets only then,
/// so a plaintext or certificate-less client never gets a greeting. Refusals are logged at notice.
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

        /// The socket address a TCP listener binds. An IP literal is taken as written — never through
        /// `getaddrinfo`, which on a host whose only IPv4 address is loopback (AI_ADDRCONFIG) turns `127.0.0.1`
        /// into the IPv6 socket `::ffff:127.0.0.1`; a name is resolved, first answer.
        static func tcpSocketAddress(host: String, port: Int) throws -> SocketAddress {
            // NIO traps on a port outside 0...65535 where resolving used to throw.
            guard (0...65_535).contains(port) else {
                throw NetleaseError.badRequest("port \(port) is not in 0-65535")
            }
            if let literal = try? SocketAddress(ipAddress: host, port: port) { return literal }
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        }
    }

    /// What a line server is told at start. Times are `Duration`s; they become NIO `TimeAmount`s only where the
    /// channel handlers are made.
    public struct Configuration: Sendable {
        /// Connections served at once; more get the `overloaded` line and are closed.
        public static let defaultMaxConnections = 4096
        public static let defaultIdleTimeout: Duration = .seconds(600)
        public static let defaultLineTimeout: Duration = .seconds(30)

        public var address: Address
        public var maxConnections: Int
        /// Close a connection that sends nothing for this long (handlers may lift it, e.g. for event streams).
        public var idleTimeout: Duration
        /// Close a connection whose started line is not finished within this time: a client trickling bytes
        /// (slowloris) cannot hold a connection slot longer than this.
        public var lineTimeout: Duration
        public var maxLineBytes: Int
        /// TLS with client certificates on a TCP listener; nil: plaintext. A TLS handshake must finish within
        /// `lineTimeout`, like a started line.
        public var tls: TLSSettings?
        /// Separate caps for connections that have not authenticated (in all and per source address) and for
        /// read-only ones (`ConnectionAdmission`); `runDirect` only. nil: only `maxConnections` applies.
        public var admission: ConnectionAdmission.Limits?

        public init(
            address: Address,
            maxConnections: Int = Configuration.defaultMaxConnections,
            idleTimeout: Duration = Configuration.defaultIdleTimeout,
            lineTimeout: Duration = Configuration.defaultLineTimeout,
            maxLineBytes: Int = WireLimits.maxLineBytes,
            tls: TLSSettings? = nil,
            admission: ConnectionAdmission.Limits? = nil
        ) {
            self.address = address
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.lineTimeout = lineTimeout
            self.maxLineBytes = maxLineBytes
            self.tls = tls
            self.admission = admission
        }
    }

    public let configuration: Configuration
    let group: any EventLoopGroup
    let logger: Logger
    public let counters = ConnectionCounters()
    /// Who may hold a slot before and after authenticating (`runDirect`); nil without `configuration.admission`.
    public let admission: ConnectionAdmission?
    /// Connections of `runDirect`, for closing them all.
    private let open = OpenChannels()

    public init(
        configuration: Configuration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        admission = configuration.admission.map(ConnectionAdmission.init(limits:))
    }

    /// The line sent to a connection over the cap before it is closed.
    static let refusal = Reply.error(NetleaseError(.overloaded, "too many connections; try again later")).rendered
    /// The line sent to the oldest unauthenticated connection when a newer one takes its slot.
    static let eviction = Reply.error(
        NetleaseError(.overloaded, "too many unauthenticated connections; the oldest is closed; authenticate sooner")
    ).rendered

    /// Binds, reports the bound address, and serves until graceful shutdown (or cancellation).
    /// `handler` runs once per accepted connection; connections over the cap get the `overloaded` error line.
    /// Without TLS (the agent's local API): a TLS listener is served by `runDirect`.
    public func run(
        onListening: @Sendable (SocketAddress?) -> Void = { _ in },
        handler: @escaping @Sendable (LineConnection) async throws -> Void
    ) async throws {
        guard configuration.tls == nil else {
            throw NetleaseError.badRequest("TLS listeners are served by runDirect, not run")
        }
        let initializer: @Sendable (Channel) -> EventLoopFuture<NIOAsyncChannel<LineFrame, ByteBuffer>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                _ = try self.addFramingHandlers(to: channel, tlsContext: nil)
                return try NIOAsyncChannel<LineFrame, ByteBuffer>(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 64))
                )
            }
        }
        let server: NIOAsyncChannel<NIOAsyncChannel<LineFrame, ByteBuffer>, Never>
        do {
            switch configuration.address {
            case .tcp(let host, let port):
                server = try await makeBootstrap().childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .bind(
                        to: try Address.tcpSocketAddress(host: host, port: port),
                        childChannelInitializer: initializer
                    )
            case .unix(let path):
                server = try await makeBootstrap().bind(
                    unixDomainSocketPath: path,
                    cleanupExistingSocketFile: true,
                    childChannelInitializer: initializer
                )
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
                                        lines: lines.makeAsyncIterator(),
                                        outbound: outbound,
                                        peer: peer
                                    )
                                    if open > maxConnections {
                                        counters.refused.add(1, ordering: .relaxed)
                                        try await connection.write(LineServer.refusal)
                                        return
                                    }
                                    try await handler(connection)
                                }
                            } catch {
                                logger.debug(
                                    "connection ended with an error",
                                    metadata: ["peer": "\(peer)", "error": "\(error)"]
                                )
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
    private func makeTLSContext() throws -> NIOSSLContext? {
        switch (configuration.tls, configuration.address) {
        case (nil, _): return nil
        case (let tls?, .tcp): return try tls.makeServerContext()  // once per listener, not per connection
        case (_?, .unix):
            throw NetleaseError.badRequest("TLS applies to TCP listeners only, not \(configuration.address)")
        }
    }

    private func makeBootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Small receive buffers that grow with the traffic: most of a coordinator's connections are idle agents
            // and watchers, and each channel keeps up to `maxMessagesPerRead` buffers for reuse.
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 16384)
            )
            // A client may send its requests and shut down its write side: it still gets every reply.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
    }

    /// TLS (when configured), idle timeout, line deadline and framing, on the channel's event loop. Returns the
    /// TLS handshake's outcome, or nil without TLS.
    private func addFramingHandlers(
        to channel: any Channel,
        tlsContext: NIOSSLContext?
    ) throws
        -> EventLoopFuture<Void>?
    {
        let sync = channel.pipeline.syncOperations
        var handshake: EventLoopFuture<Void>?
        if let tlsContext {
            // Closest to the socket: every handler after it sees only decrypted bytes.
            try sync.addHandler(NIOSSLServerHandler(context: tlsContext))
            let promise = channel.eventLoop.makePromise(of: Void.self)
            try sync.addHandler(TLSHandshakeGate(timeout: TimeAmount(configuration.lineTimeout), promise: promise))
            handshake = promise.futureResult
        }
        try sync.addHandler(
            LineFramer(
                maxLength: configuration.maxLineBytes,
                idleTimeout: TimeAmount(configuration.idleTimeout),
                lineTimeout: TimeAmount(configuration.lineTimeout)
            )
        )
        return handshake
    }

    /// An accepted connection served by a channel handler on its event loop (no task per connection).
    public struct DirectConnection {
        public let channel: any Channel
        /// Completes when the TLS handshake succeeded; nil without TLS. Greet only after it.
        public let handshake: EventLoopFuture<Void>?
        /// The connection's place among unauthenticated, reader and authenticated connections: the handler
        /// promotes it when it authenticates. nil: the server has no admission caps.
        public let ticket: AdmissionTicket?
    }

    /// Like `run(onListening:handler:)`, but each connection is served by the channel handler `makeHandler`
    /// returns, added on the connection's event loop after the framing handlers (so it reads `LineFrame`s and
    /// writes `ByteBuffer`s). No Swift task per connection or per line: the fast path for servers whose work
    /// does not suspend. Connections over the cap get the `overloaded` error line and are closed before any
    /// handler sees them; graceful shutdown closes the listener and then every open connection.
    public func runDirect(
        onListening: @Sendable (SocketAddress?) -> Void = { _ in },
        makeHandler: @escaping @Sendable (DirectConnection) -> any ChannelHandler
    ) async throws {
        let tlsContext = try makeTLSContext()
        let counters = self.counters
        let maxConnections = configuration.maxConnections
        let logger = self.logger
        let open = self.open
        let admission = self.admission
        let initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let count = counters.open.add(1, ordering: .relaxed).newValue
                counters.total.add(1, ordering: .relaxed)
                let id = open.insert(channel)
                channel.closeFuture.whenComplete { _ in
                    counters.open.subtract(1, ordering: .relaxed)
                    open.remove(id)
                }
                let handshake = try self.addFramingHandlers(to: channel, tlsContext: tlsContext)
                let peer = channel.remoteAddress.map { "\($0)" } ?? "local"
                handshake?.whenFailure { error in
                    counters.tlsRefused.add(1, ordering: .relaxed)
                    logger.notice(
                        "refused a connection: TLS handshake failed",
                        metadata: [
                            "peer": "\(peer)", "error": "\(error)",
                        ]
                    )
                }
                if count > maxConnections {
                    counters.refused.add(1, ordering: .relaxed)
                    try channel.pipeline.syncOperations.addHandler(RefuseConnection(handshake: handshake))
                } else {
                    let ticket = admission.map { admission in
                        let (id, evicted) = admission.admit(channel)
                        channel.closeFuture.whenComplete { _ in admission.remove(id) }
                        if let evicted { LineServer.evict(evicted, counters: counters, logger: logger) }
                        return AdmissionTicket(admission: admission, id: id)
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        makeHandler(DirectConnection(channel: channel, handshake: handshake, ticket: ticket))
                    )
                }
            }
        }
        let server: any Channel
        do {
            switch configuration.address {
            case .tcp(let host, let port):
                server = try await makeBootstrap().childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer(initializer).bind(to: try Address.tcpSocketAddress(host: host, port: port))
                    .get()
            case .unix(let path):
                server = try await makeBootstrap().childChannelInitializer(initializer)
                    .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            }
        } catch {
            throw NetleaseError(.unavailable, "cannot listen on \(configuration.address): \(error)")
        }
        onListening(server.localAddress)
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await server.closeFuture.get()
            } onCancel: {
                server.close(promise: nil)
            }
        } onGracefulShutdown: {
            server.close(promise: nil)
        }
        for channel in open.all() { channel.close(promise: nil) }
        for channel in open.all() { try? await channel.closeFuture.get() }
    }
}

extension LineServer {
    /// Closes an unauthenticated connection that gave way to a newer one, with the `overloaded` line first.
    static func evict(_ channel: any Channel, counters: ConnectionCounters, logger: Logger) {
        counters.evicted.add(1, ordering: .relaxed)
        logger.notice(
            "closed the oldest unauthenticated connection to admit a new one",
            metadata: ["peer": "\(channel.remoteAddress.map { "\($0)" } ?? "local")"]
        )
        channel.writeAndFlush(ByteBuffer(string: eviction)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Closes every connection `runDirect` has open (the listener keeps accepting new ones).
    public func closeConnections() {
        for channel in open.all() { channel.close(promise: nil) }
    }
}

/// The open connections of a direct-mode server, for closing them at shutdown.
final class OpenChannels: Sendable {
    private let channels = Mutex<(next: Int, byID: [Int: any Channel])>((0, [:]))

    func insert(_ channel: any Channel) -> Int {
        channels.withLock { state in
            state.next += 1
            state.byID[state.next] = channel
            return state.next
        }
    }

    func remove(_ id: Int) { _ = channels.withLock { $0.byID.removeValue(forKey: id) } }
    func all() -> [any Channel] { channels.withLock { Array($0.byID.values) } }
}

/// Sends the `overloaded` line to a connection over the cap (after its TLS handshake, if any) and closes it.
final class RefuseConnection: ChannelInboundHandler {
    typealias InboundIn = LineFrame
    private let handshake: EventLoopFuture<Void>?

    init(handshake: EventLoopFuture<Void>?) { self.handshake = handshake }

    func channelActive(context: ChannelHandlerContext) {
        let refusal = LineServer.refusal
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let send: @Sendable () -> Void = {
            let context = bound.value
            context.writeAndFlush(NIOAny(ByteBuffer(string: refusal))).whenComplete { _ in
                bound.value.close(promise: nil)
            }
        }
        if let handshake { handshake.whenSuccess(send) } else { send() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Connection counts of one server.
public final class ConnectionCounters: Sendable {
    public let open = Atomic<Int>(0)
    public let total = Atomic<Int>(0)
    public let refused = Atomic<Int>(0)
    /// Connections whose TLS handshake failed or did not finish in time.
    public let tlsRefused = Atomic<Int>(0)
    /// Unauthenticated connections closed to make room for newer ones (`ConnectionAdmission`).
    public let evicted = Atomic<Int>(0)

    public init() {}
}

/// One accepted connection, used by the handler's task only.
public final class LineConnection {
    private var lines: NIOAsyncChannelInboundStream<LineFrame>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    public let peer: String

    init(
        lines: NIOAsyncChannelInboundStream<LineFrame>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        peer: String
    ) {
        self.lines = lines
        self.outbound = outbound
        self.peer = peer
    }

    /// The next frame, or nil when the peer closed.
    public func next() async throws -> LineFrame? { try await lines.next() }

    /// Writes text (already LF-terminated) and waits until the socket accepted it.
    public func write(_ text: String) async throws { try await outbound.write(ByteBuffer(string: text)) }

}

/// Turns the outcome of a connection's TLS handshake into `promise`, which the connection's task awaits before it
/// greets, and closes a connection whose handshake is not finished within `timeout` (a client that opens a socket
/// and stalls cannot hold a slot longer than one that trickles a line).
final class TLSHandshakeGate: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let promise: EventLoopPromise<Void>
    private var deadline: Scheduled<Void>?
    private var settled = false

    init(timeout: TimeAmount, promise: EventLoopPromise<Void>) {
        self.timeout = timeout
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((gate: self, context: context), eventLoop: context.eventLoop)
        let timeout = timeout
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.gate.settle(
                .failure(NetleaseError(.unavailable, "TLS handshake not finished within \(timeout)"))
            )
            loopBound.value.context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        settle(.failure(NetleaseError(.unavailable, "connection closed during the TLS handshake")))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { settle(.success(())) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        settle(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle(.failure(NetleaseError(.unavailable, "connection closed during the TLS handshake")))
        context.fireChannelInactive()
    }

    private func settle(_ result: Result<Void, Error>) {
        deadline?.cancel()
        deadline = nil
        guard !settled else { return }
        settled = true
        promise.completeWith(result)
    }
}
