import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NetleaseCore
import ServiceLifecycle
import Synchronization

/// A small HTTP/1.1 server for the daemons' side doors (metrics and health on TCP, plugin APIs on a unix socket):
/// NIO's HTTP/1 codec parses, `HTTPRequestAssembler` gathers each body up to a cap and keeps the deadlines, and
/// `HTTPRoutes` picks the handler. Not a web framework: whole requests in, whole responses out.
///
/// One child task per connection inside a discarding task group (as `LineServer.run`); each connection answers its
/// requests one at a time, in order, and stays open between them (keep-alive) unless the client asks otherwise.
/// A body over `maxBodyBytes` gets 413 and the connection is closed without reading the rest. A connection over
/// `maxConnections` gets 503 at once, without waiting for its request, and is closed: every open connection holds a
/// file descriptor of the daemon, so none may wait on the client beyond the cap (`headTimeout` bounds the ones
/// within it that say nothing). Graceful shutdown
/// closes the listener and every idle connection at once; a request being answered is finished and its connection
/// closed after it (or within `requestTimeout` if the client takes no answer).
public struct HTTPServer: Service {
    public typealias Address = LineServer.Address

    /// What an HTTP server is told at start.
    public struct Configuration: Sendable {
        public static let defaultMaxBodyBytes = 1 << 20
        public static let defaultIdleTimeout: Duration = .seconds(60)
        public static let defaultRequestTimeout: Duration = .seconds(10)
        public static let defaultHeadTimeout: Duration = .seconds(10)
        public static let defaultMaxConnections = 256

        public var address: Address
        /// Largest request body accepted; larger ones get 413.
        public var maxBodyBytes: Int
        /// A connection with no request in progress is closed after this long (this also bounds how long a client
        /// may take to send the head of a later request on a kept-alive connection).
        public var idleTimeout: Duration
        /// A new connection's first request head must be complete within this (or `idleTimeout` if shorter):
        /// a client connects to ask something at once, so one that stays silent holds its slot and descriptor for
        /// seconds, not for the whole idle timeout. The default equals `defaultRequestTimeout`, a scrape timeout's
        /// length and far above any round trip.
        public var headTimeout: Duration
        /// Once a request's head arrived, its body must be complete within this time; and an answer written must
        /// reach the socket within it (a client that stops reading its answers is closed).
        public var requestTimeout: Duration
        /// Connections served at once; one more gets 503 at once, before its request, and is closed.
        public var maxConnections: Int

        public init(
            address: Address,
            maxBodyBytes: Int = Configuration.defaultMaxBodyBytes,
            idleTimeout: Duration = Configuration.defaultIdleTimeout,
            headTimeout: Duration = Configuration.defaultHeadTimeout,
            requestTimeout: Duration = Configuration.defaultRequestTimeout,
            maxConnections: Int = Configuration.defaultMaxConnections
        ) {
            self.address = address
            self.maxBodyBytes = maxBodyBytes
            self.idleTimeout = idleTimeout
            self.headTimeout = headTimeout
            self.requestTimeout = requestTimeout
            self.maxConnections = maxConnections
        }
    }

    public let configuration: Configuration
    let routes: HTTPRoutes
    let group: any EventLoopGroup
    let logger: Logger
    let onListening: @Sendable (SocketAddress) -> Void

    /// - Parameter onListening: called once the server accepts connections, with the bound address (port 0
    ///   resolved).
    public init(
        configuration: Configuration,
        routes: HTTPRoutes,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.routes = routes
        self.group = group
        self.logger = logger
        self.onListening = onListening
    }

    typealias ConnectionChannel = NIOAsyncChannel<HTTPInbound, HTTPServerResponsePart>

    /// Binds, reports the bound address, and serves until graceful shutdown (or cancellation).
    public func run() async throws {
        let configuration = self.configuration
        // Headers are small on every route we serve; NIO's default allows 2 MiB of them.
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = 64 * 1024
        let initializer: @Sendable (Channel) -> EventLoopFuture<ConnectionChannel> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(HTTPResponseEncoder())
                try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(limitConfiguration: limits)))
                // A request NIO cannot parse gets 400 and the connection closes.
                try sync.addHandler(HTTPServerProtocolErrorHandler())
                try sync.addHandler(
                    HTTPRequestAssembler(
                        maxBodyBytes: configuration.maxBodyBytes,
                        idleTimeout: TimeAmount(configuration.idleTimeout),
                        headTimeout: TimeAmount(configuration.headTimeout),
                        requestTimeout: TimeAmount(configuration.requestTimeout)
                    )
                )
                return try ConnectionChannel(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8))
                )
            }
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        let server: NIOAsyncChannel<ConnectionChannel, Never>
        do {
            switch configuration.address {
            case .tcp(let host, let port):
                server = try await bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .bind(
                        to: try Address.tcpSocketAddress(host: host, port: port),
                        childChannelInitializer: initializer
                    )
            case .unix(let path):
                server = try await bootstrap.bind(
                    unixDomainSocketPath: path,
                    cleanupExistingSocketFile: true,
                    childChannelInitializer: initializer
                )
            }
        } catch {
            throw NetleaseError(.unavailable, "cannot listen on \(configuration.address) for HTTP: \(error)")
        }
        if let address = server.channel.localAddress { onListening(address) }
        let connections = HTTPConnections()
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                try await server.executeThenClose { inbound in
                    for try await channel in inbound {
                        tasks.addTask { await self.serve(channel, connections: connections) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
            connections.shutDown()
        }
    }

    /// Serves one connection's requests in order until it closes, asks to close, or the server stops.
    private func serve(_ channel: ConnectionChannel, connections: HTTPConnections) async {
        let (id, open) = connections.insert(channel.channel)
        defer { connections.remove(id) }
        let peer = channel.channel.remoteAddress.map { "\($0)" } ?? "local"
        do {
            try await channel.executeThenClose { inbound, outbound in
                if open > configuration.maxConnections {
                    // Answered and closed at once: waiting for its request would let any client that connects and
                    // says nothing hold a descriptor per connection, past the cap, for the head timeout. curl
                    // prints the 503 (sent before or after its request, it is the first answer it reads); clients
                    // that check for unsolicited answers (Go's, Prometheus's) fail the request either way.
                    let refusal = HTTPServerResponse.text(.serviceUnavailable, "too many connections; retry later\n")
                    try await write(refusal, version: .http1_1, keepAlive: false, to: outbound)
                    return
                }
                for try await event in inbound {
                    switch event {
                    case .tooLarge(let head):
                        let refusal = HTTPServerResponse.text(
                            .payloadTooLarge,
                            "request body larger than \(configuration.maxBodyBytes) bytes\n"
                        )
                        try await write(refusal, version: head.version, keepAlive: false, to: outbound)
                        return
                    case .request(let request, let keepAlive):
                        connections.setBusy(id, true)
                        let response = await respond(to: request, peer: peer)
                        let keep = keepAlive && !connections.isShuttingDown
                        try await write(response, version: request.version, keepAlive: keep, to: outbound)
                        // Shutdown may have begun while this request was answered: then this connection ends here.
                        if !connections.setBusy(id, false) || !keep { return }
                    }
                }
            }
        } catch {
            logger.debug("HTTP connection ended with an error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    private func respond(to request: HTTPServerRequest, peer: String) async -> HTTPServerResponse {
        do {
            return try await routes.respond(to: request)
        } catch {
            logger.error(
                "HTTP handler failed",
                metadata: [
                    "method": "\(request.method.rawValue)", "path": "\(request.path)", "peer": "\(peer)",
                    "error": "\(error)",
                ]
            )
            return .text(.internalServerError, "internal error; see the server's log\n")
        }
    }

    /// Writes a whole response with `Content-Length` and the `Connection` header the decision needs.
    private func write(
        _ response: HTTPServerResponse,
        version: HTTPVersion,
        keepAlive: Bool,
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        let version: HTTPVersion = version == .http1_0 ? .http1_0 : .http1_1
        var head = HTTPResponseHead(version: version, status: response.status, headers: response.headers)
        let code = response.status.code
        if !(100..<200).contains(code) && code != 204 && code != 304 {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        }
        if !keepAlive {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        } else if version == .http1_0 {
            head.headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        var parts: [HTTPServerResponsePart] = [.head(head)]
        if response.body.readableBytes > 0 { parts.append(.body(.byteBuffer(response.body))) }
        parts.append(.end(nil))
        try await outbound.write(contentsOf: parts)
    }
}

/// The open connections of one HTTP server and whether each is answering a request, so that graceful shutdown can
/// close the idle ones at once and let the busy ones finish their answer.
final class HTTPConnections: Sendable {
    private struct State {
        var next = 0
        var shuttingDown = false
        var open: [Int: (channel: any Channel, busy: Bool)] = [:]
    }

    private let state = Mutex(State())

    /// Registers a connection; returns its id and how many are open with it.
    func insert(_ channel: any Channel) -> (id: Int, open: Int) {
        let (id, count, shuttingDown) = state.withLock { s in
            s.next += 1
            s.open[s.next] = (channel, false)
            return (s.next, s.open.count, s.shuttingDown)
        }
        if shuttingDown { channel.close(promise: nil) }
        return (id, count)
    }

    func remove(_ id: Int) { _ = state.withLock { $0.open.removeValue(forKey: id) } }

    var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// Marks a connection busy (answering) or idle; returns false when the server is shutting down.
    @discardableResult
    func setBusy(_ id: Int, _ busy: Bool) -> Bool {
        state.withLock { s in
            s.open[id]?.busy = busy
            return !s.shuttingDown
        }
    }

    /// Closes every idle connection; busy ones close after their answer (`setBusy` tells them).
    func shutDown() {
        let idle = state.withLock { s in
            s.shuttingDown = true
            return s.open.values.filter { !$0.busy }.map(\.channel)
        }
        for channel in idle { channel.close(promise: nil) }
    }
}
