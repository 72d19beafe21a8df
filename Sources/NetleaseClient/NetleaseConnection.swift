import NIOCore
import NIOPosix
import NIOSSL
import NetleaseCore
import NetleaseTransport
import NetleaseWire
import Synchronization

/// The result of one request: the `OK` line's fields and any records that followed it.
public struct ReplyData: Sendable, Equatable {
    public var fields: Fields
    public var records: [Fields]

    public init(fields: Fields, records: [Fields] = []) {
        self.fields = fields
        self.records = records
    }
}

/// One connection to a coordinator. Requests may be sent from several tasks at once: they are written in call order
/// and each caller gets its own reply (the protocol answers in order), so concurrent calls pipeline.
///
/// Use it inside `NetleaseConnection.connect(to:secret:tls:_:)`, which owns the socket's lifetime.
public final class NetleaseConnection: Sendable {
    private let waiters: ReplyWaiters
    public let endpoint: Endpoint
    public let greeting: Greeting

    private init(waiters: ReplyWaiters, endpoint: Endpoint, greeting: Greeting) {
        self.waiters = waiters
        self.endpoint = endpoint
        self.greeting = greeting
    }

    /// How long `connect` waits for the TCP connection unless told otherwise.
    public static let defaultConnectTimeout: Duration = .seconds(5)
    /// How long `connect` waits for the greeting once connected (with TLS: the handshake and the greeting) unless
    /// told otherwise. Generous: a busy coordinator greets within milliseconds.
    public static let defaultGreetingTimeout: Duration = .seconds(10)

    /// Connects over TCP, reads the greeting, authenticates when a secret is given, runs `body`, and closes.
    ///
    /// With `tls`, the connection is a TLS stream first: this side presents its certificate and verifies the
    /// coordinator's against the CA; the protocol (greeting, AUTH, requests) then runs inside it unchanged. Bad TLS
    /// files throw `bad-request`; a refused handshake throws `unavailable`.
    ///
    /// A connection not established within `connectTimeout`, or not greeted within `greetingTimeout` after that,
    /// throws `unavailable`.
    public static func connect<T: Sendable>(
        to endpoint: Endpoint,
        secret: String? = nil,
        tls: TLSSettings? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: Duration = NetleaseConnection.defaultConnectTimeout,
        greetingTimeout: Duration = NetleaseConnection.defaultGreetingTimeout,
        _ body: (NetleaseConnection) async throws -> T
    ) async throws -> T {
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<LineFrame, ByteBuffer>>
        if let tls {
            let context = try tls.makeClientContext()
            let serverName = tls.serverNameIndication
            initializer = { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: serverName)
                    )
                    return try wrapChannel(channel)
                }
            }
        } else {
            initializer = initializeChannel
        }
        let channel: NIOAsyncChannel<LineFrame, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(connectTimeout))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: endpoint.host, port: endpoint.port, channelInitializer: initializer)
        } catch {
            throw NetleaseError(.unavailable, "cannot connect to coordinator at \(endpoint): \(error)")
        }
        // The likeliest reason for silence from a coordinator: it requires TLS and waits for a handshake.
        let hint = tls == nil ? " (a coordinator that requires TLS greets only TLS clients)" : ""
        return try await run(
            channel,
            endpoint: endpoint,
            secret: secret,
            greetingTimeout: greetingTimeout,
            lateHint: hint,
            body
        )
    }

    /// Connects to a unix socket (an agent's local API), reads the greeting, runs `body`, and closes. A server not
    /// greeting within `greetingTimeout` throws `unavailable`.
    public static func connect<T: Sendable>(
        socketPath: String,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        greetingTimeout: Duration = NetleaseConnection.defaultGreetingTimeout,
        _ body: (NetleaseConnection) async throws -> T
    ) async throws -> T {
        let channel: NIOAsyncChannel<LineFrame, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connect(unixDomainSocketPath: socketPath, channelInitializer: initializeChannel)
        } catch {
            throw NetleaseError(.unavailable, "cannot connect to the agent at \(socketPath): \(error)")
        }
        return try await run(
            channel,
            endpoint: Endpoint(host: socketPath, port: 0),
            secret: nil,
            greetingTimeout: greetingTimeout,
            lateHint: "",
            body
        )
    }

    @Sendable private static func initializeChannel(
        _ channel: any Channel
    )
        -> EventLoopFuture<NIOAsyncChannel<LineFrame, ByteBuffer>>
    {
        channel.eventLoop.makeCompletedFuture { try wrapChannel(channel) }
    }

    /// Adds the line framing and wraps the channel; runs on the channel's event loop.
    private static func wrapChannel(_ channel: any Channel) throws -> NIOAsyncChannel<LineFrame, ByteBuffer> {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: 1 << 24)))
        return try NIOAsyncChannel<LineFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
    }

    private static func run<T: Sendable>(
        _ channel: NIOAsyncChannel<LineFrame, ByteBuffer>,
        endpoint: Endpoint,
        secret: String?,
        greetingTimeout: Duration,
        lateHint: String,
        _ body: (NetleaseConnection) async throws -> T
    ) async throws -> T {
        let deadline = GreetingDeadline.arm(channel.channel, timeout: greetingTimeout)
        let late = NetleaseError(
            .unavailable,
            "\(endpoint) accepted the connection but sent no greeting within \(greetingTimeout)\(lateHint)"
        )
        return try await channel.executeThenClose { inbound, outbound in
            let (outgoing, outgoingContinuation) = AsyncStream.makeStream(of: String.self)
            let waiters = ReplyWaiters(outgoing: outgoingContinuation)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                var lines = inbound.makeAsyncIterator()
                let head: LineFrame?
                do {
                    head = try await lines.next()
                } catch {
                    guard deadline.settle() else { throw late }
                    // Under TLS this is where a refused handshake surfaces (bad or missing certificate on either side).
                    throw NetleaseError(.unavailable, "connection to \(endpoint) failed before the greeting: \(error)")
                }
                guard deadline.settle() else { throw late }
                guard case .line(let first)? = head else {
                    throw NetleaseError(.unavailable, "\(endpoint) closed the connection before greeting")
                }
                if first.hasPrefix("ERR ") {
                    if case .error(let error) = try Reply.parseHead(Substring(first)) { throw error }
                }
                let greeting = try Greeting(line: Substring(first))
                group.addTask { [lines] in
                    var lines = lines
                    await ReplyReader(waiters: waiters, endpoint: endpoint).run(&lines)
                }
                group.addTask {
                    do {
                        for await text in outgoing { try await outbound.write(ByteBuffer(string: text)) }
                    } catch {
                        waiters.close(NetleaseError(.unavailable, "cannot write to \(endpoint): \(error)"))
                    }
                }
                let connection = NetleaseConnection(waiters: waiters, endpoint: endpoint, greeting: greeting)
                do {
                    if let secret { _ = try await connection.send(.auth(secret: secret)) }
                    let result = try await body(connection)
                    outgoingContinuation.finish()
                    group.cancelAll()
                    return result
                } catch {
                    outgoingContinuation.finish()
                    group.cancelAll()
                    throw error
                }
            }
        }
    }

    /// Turns this connection into an event stream: returns the current hosts and every change after them. The
    /// stream ends when the connection does. Send nothing else on a watching connection.
    public func watch() async throws -> (hosts: [HostRecord], events: AsyncStream<Event>) {
        let reply = try await send(Request.watch)
        return (try reply.records.map(WireCodec.host), waiters.events)
    }

    /// Sends one request and waits for its reply. An `ERR` reply is thrown as `NetleaseError`.
    @discardableResult
    public func send(_ request: Request) async throws -> ReplyData {
        try await waiters.enqueue(request.rendered + "\n")
    }

    /// Fails every request waiting on this connection (and every later one) with `unavailable`: for callers that
    /// decide the peer is gone, e.g. after a reply did not come in time.
    public func abort(_ reason: String) {
        waiters.close(NetleaseError(.unavailable, reason))
    }

    /// Runs `body`; if it has not finished within `timeout`, aborts the connection so that it fails promptly.
    public func within<T: Sendable>(
        _ timeout: Duration,
        _ what: String,
        _ body: () async throws -> T
    ) async throws
        -> T
    {
        let watchdog = Task { [self] in
            try await Task.sleep(for: timeout)
            abort("\(what): no answer from \(endpoint) within \(timeout)")
        }
        defer { watchdog.cancel() }
        return try await body()
    }

    /// Sends one request of an agent's local API.
    @discardableResult
    public func send(_ request: LocalRequest) async throws -> ReplyData {
        try await waiters.enqueue(request.rendered + "\n")
    }
}

/// Reply slots in request order. The writer enqueues a slot and writes under one lock-ordered step, so the n-th
/// line sent is matched with the n-th reply read.
final class ReplyWaiters: Sendable {
    private let state = Mutex(State())
    private let outgoing: AsyncStream<String>.Continuation
    let events: AsyncStream<Event>
    let eventSink: AsyncStream<Event>.Continuation

    struct State {
        var slots: [CheckedContinuation<ReplyData, Error>] = []
        var head = 0
        var closed: NetleaseError?
    }

    init(outgoing: AsyncStream<String>.Continuation) {
        self.outgoing = outgoing
        (events, eventSink) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
    }

    /// Queues the reply slot and the line under one lock, so lines go out in the order their slots were queued.
    func enqueue(_ text: String) async throws -> ReplyData {
        try await withCheckedThrowingContinuation { continuation in
            state.withLock { s in
                if let closed = s.closed {
                    continuation.resume(throwing: closed)
                    return
                }
                s.slots.append(continuation)
                outgoing.yield(text)
            }
        }
    }

    func complete(with result: Result<ReplyData, Error>) -> Bool {
        let continuation = state.withLock { s -> CheckedContinuation<ReplyData, Error>? in
            guard s.head < s.slots.count else { return nil }
            let next = s.slots[s.head]
            s.head += 1
            if s.head == s.slots.count {
                s.slots.removeAll(keepingCapacity: true)
                s.head = 0
            }
            return next
        }
        guard let continuation else { return false }
        continuation.resume(with: result)
        return true
    }

    func close(_ error: NetleaseError) {
        let pending = state.withLock { s -> [CheckedContinuation<ReplyData, Error>] in
            s.closed = s.closed ?? error
            let pending = Array(s.slots[s.head...])
            s.slots = []
            s.head = 0
            return pending
        }
        for continuation in pending { continuation.resume(throwing: error) }
        eventSink.finish()
    }
}

/// Reads replies (head line plus `count` records) and hands each to the oldest waiting request.
struct ReplyReader {
    let waiters: ReplyWaiters
    let endpoint: Endpoint

    func run(_ lines: inout NIOAsyncChannelInboundStream<LineFrame>.AsyncIterator) async {
        do {
            while let frame = try await lines.next() {
                guard case .line(let text) = frame else { throw NetleaseError(.internalError, "reply line too long") }
                if text.hasPrefix(Event.tag + " ") {
                    waiters.eventSink.yield(try Event(line: Substring(text)))
                    continue
                }
                let result: Result<ReplyData, Error>
                switch try Reply.parseHead(Substring(text)) {
                case .error(let error):
                    result = .failure(error)
                case .ok(let fields, let count):
                    var records: [Fields] = []
                    records.reserveCapacity(count ?? 0)
                    for _ in 0..<(count ?? 0) {
                        guard case .line(let recordText)? = try await lines.next() else {
                            throw NetleaseError(.unavailable, "\(endpoint) closed the connection mid-reply")
                        }
                        let parsed = try LineFormat.parse(Substring(recordText), maxBytes: WireLimits.maxReplyLineBytes)
                        records.append(parsed.fields)
                    }
                    result = .success(ReplyData(fields: fields, records: records))
                }
                guard waiters.complete(with: result) else {
                    throw NetleaseError(.internalError, "\(endpoint) sent a reply nobody asked for")
                }
            }
            waiters.close(NetleaseError(.unavailable, "\(endpoint) closed the connection"))
        } catch let error as NetleaseError {
            waiters.close(error)
        } catch {
            waiters.close(NetleaseError(.unavailable, "connection to \(endpoint) failed: \(error)"))
        }
    }
}
