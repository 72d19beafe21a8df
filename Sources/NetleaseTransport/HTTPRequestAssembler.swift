import NIOCore
import NIOHTTP1

/// What the HTTP codec hands a server connection's loop, in arrival order.
enum HTTPInbound: Sendable {
    /// A complete request; `keepAlive` is what its version and `Connection` header ask for.
    case request(HTTPServerRequest, keepAlive: Bool)
    /// The request's body would exceed the cap: answer 413 and close (the rest of it is not read).
    case tooLarge(HTTPRequestHead)
}

/// Between NIO's HTTP/1 codec and a connection's loop: gathers each request's body (up to `maxBodyBytes`), answers
/// `Expect: 100-continue`, and enforces the connection's deadlines. Parsing is NIO's; this only assembles.
///
/// Deadlines: a new connection's first request head must be complete within `headTimeout` (or `idleTimeout` if
/// shorter); later, while no request is in progress or being answered, the next one must arrive within
/// `idleTimeout` (both also bound a client trickling header bytes: NIO reports a head only once it is complete);
/// once a head arrived, the body must be complete within `requestTimeout`. Either way the connection is closed without an
/// answer, as for any client that stopped talking. And while answers are written but not yet handed to the socket
/// whole, one must leave within `requestTimeout` of the last that did: a client that pipelines requests and reads no
/// answer would otherwise keep its connection busy (never idle, no timer running) for good, and graceful shutdown,
/// which lets a busy connection finish, with it.
final class HTTPRequestAssembler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPInbound
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let maxBodyBytes: Int
    private let idleTimeout: TimeAmount
    private let headTimeout: TimeAmount
    private let requestTimeout: TimeAmount

    /// The request being received.
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// After an oversized request nothing more is passed on: the connection closes once the 413 is written.
    private var refusing = false
    /// Requests passed on and not yet answered (a client may pipeline).
    private var unanswered = 0
    /// Answers written whose last part has not reached the socket yet.
    private var unsent = 0
    private var idleTimer: Scheduled<Void>?
    private var requestTimer: Scheduled<Void>?
    private var writeTimer: Scheduled<Void>?

    init(maxBodyBytes: Int, idleTimeout: TimeAmount, headTimeout: TimeAmount, requestTimeout: TimeAmount) {
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
        self.headTimeout = min(headTimeout, idleTimeout)
        self.requestTimeout = requestTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armIdleTimer(context, in: headTimeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context, in: headTimeout)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            idleTimer?.cancel()
            idleTimer = nil
            self.head = head
            body = context.channel.allocator.buffer(capacity: 0)
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodyBytes {
                return refuse(head, context)
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                let interim = HTTPResponseHead(version: head.version, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
            }
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            requestTimer = context.eventLoop.scheduleTask(in: requestTimeout) { bound.value.close(promise: nil) }
        case .body(var chunk):
            guard let head else { return }
            guard body.readableBytes + chunk.readableBytes <= maxBodyBytes else { return refuse(head, context) }
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            requestTimer?.cancel()
            requestTimer = nil
            self.head = nil
            unanswered += 1
            let request = HTTPServerRequest(
                method: head.method,
                uri: head.uri,
                version: head.version,
                headers: head.headers,
                body: body
            )
            body = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(.request(request, keepAlive: head.isKeepAlive)))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        unanswered = max(0, unanswered - 1)
        if unanswered == 0 && head == nil && !refusing { armIdleTimer(context, in: idleTimeout) }
        let promise = promise ?? context.eventLoop.makePromise()
        unsent += 1
        if writeTimer == nil { armWriteTimer(context) }
        // Writes complete in order: this answer left whole; the next one has its own full time from now.
        promise.futureResult.assumeIsolated().whenComplete { _ in
            self.unsent -= 1
            self.writeTimer?.cancel()
            self.writeTimer = nil
            if self.unsent > 0 && context.channel.isActive { self.armWriteTimer(context) }
        }
        context.write(data, promise: promise)
    }

    private func refuse(_ head: HTTPRequestHead, _ context: ChannelHandlerContext) {
        refusing = true
        cancelTimers()
        self.head = nil
        body = ByteBuffer()
        context.fireChannelRead(wrapInboundOut(.tooLarge(head)))
    }

    private func armIdleTimer(_ context: ChannelHandlerContext, in timeout: TimeAmount) {
        idleTimer?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: timeout) { bound.value.close(promise: nil) }
    }

    private func armWriteTimer(_ context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        writeTimer = context.eventLoop.scheduleTask(in: requestTimeout) { bound.value.close(promise: nil) }
    }

    private func cancelTimers() {
        writeTimer?.cancel()
        writeTimer = nil
        idleTimer?.cancel()
        idleTimer = nil
        requestTimer?.cancel()
        requestTimer = nil
    }
}
