import Logging
import NIOCore
import NetleaseCore
import NetleaseTransport
import NetleaseWire
import Synchronization

/// Serves one coordinator connection on its event loop: greeting, then one reply per request line, in order.
///
/// Requests are pipelined: the hot verbs (ACQUIRE, RELEASE, HEARTBEAT) are handed to the store as their lines
/// arrive — the store applies them in that order — and their replies are written in the same order once the
/// commit holding them is durable, so a client with 16 requests in flight gets them into one group commit. Every
/// other verb is a barrier: it runs in a task after the requests before it were applied and before any after it
/// is read, so it sees exactly the state its position in the stream implies, and session changes (AUTH, WATCH,
/// QUIT) take effect in order.
///
/// Back-pressure: reading stops while a barrier runs, while `maxInFlight` replies are outstanding, or while the
/// socket does not drain (a client that never reads its replies only stalls itself).
final class CoordinatorConnection: ChannelDuplexHandler {
    typealias InboundIn = LineFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Requests of one connection applied but not yet answered, before reading stops.
    static let maxInFlight = 1024

    private let handler: RequestHandler
    private let events: EventHub
    private let keepaliveInterval: TimeAmount
    private let authRequired: Bool
    private let handshake: EventLoopFuture<Void>?
    private let logger: Logger
    private var session: Session
    /// This connection's standing in the server's admission caps (nil: none configured).
    private let ticket: AdmissionTicket?
    /// A connection that has not authenticated this long after it was accepted is closed; nil: no deadline.
    private let authDeadline: Duration?
    private var authTimer: Scheduled<Void>?

    /// Replies in request order; nil while a reply is still to come. The first slot is the oldest request not yet
    /// written.
    private var slots = CircularBuffer<Reply?>(initialCapacity: 4)
    /// Sequence number of the request in `slots.first`.
    private var firstSlot = 0
    /// Sequence number the next request gets.
    private var nextSequence = 0
    /// Lines read but not yet started (while paused).
    private var waiting = CircularBuffer<LineFrame>(initialCapacity: 2)
    /// A barrier request's task is running.
    private var barrier = false
    /// No more requests are started (QUIT, too many failed AUTHs, an oversized line): the connection closes once
    /// every reply before it is written.
    private var closing = false
    /// The peer shut down its sending side: what it sent is answered, then the connection closes.
    private var inputEnded = false
    /// Set by WATCH: events start once every reply before it is written.
    private var watch: EventHub.Subscription?
    private var streaming = false
    private var keepalive: RepeatedTask?
    /// A `read` held back while paused.
    private var readHeld = false
    private var greeted = false
    private var context: ChannelHandlerContext?
    /// Replies from the store's thread, handed to the event loop in batches.
    private let mailbox = Mailbox()

    init(
        handler: RequestHandler,
        events: EventHub,
        keepaliveInterval: TimeAmount,
        authRequired: Bool,
        handshake: EventLoopFuture<Void>?,
        ticket: AdmissionTicket? = nil,
        authDeadline: Duration? = nil,
        logger: Logger
    ) {
        self.handler = handler
        self.events = events
        self.keepaliveInterval = keepaliveInterval
        self.authRequired = authRequired
        self.handshake = handshake
        self.ticket = ticket
        self.authDeadline = authRequired ? authDeadline : nil
        self.logger = logger
        session = Session(authenticated: !authRequired)
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        session.channel = context.channel
        if !authRequired { _ = ticket?.promote(to: .authenticated) }
        if let authDeadline {
            // Counted from the accept, TLS handshake included; nothing the client sends moves it (not even PING):
            // without a credential a connection holds its slot for this long at most.
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            authTimer = context.eventLoop.scheduleTask(in: TimeAmount(authDeadline)) {
                bound.value.authDeadlinePassed()
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        endWatch()
        authTimer?.cancel()
        authTimer = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        let greeting = ByteBuffer(string: Greeting(authRequired: authRequired).line + "\n")
        if let handshake {
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            handshake.whenSuccess {
                bound.value.greet(greeting)
            }
        } else {
            greet(greeting)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        endWatch()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if canStart && waiting.isEmpty {
            start(frame)
        } else if !closing && watch == nil {
            waiting.append(frame)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writeReady()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if streaming { writeEvents() } else { resume() }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            // The peer sent everything it will send: answer what was read, then close.
            inputEnded = true
            closeIfDone()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readHeld = true
        } else {
            context.read()
        }
    }

    // MARK: requests

    private var canStart: Bool {
        greeted && !barrier && !closing && watch == nil && slots.count < Self.maxInFlight
    }

    /// Reading is held back. Never before the greeting (a TLS handshake needs reads) and never while streaming
    /// events (lines are ignored then, but the peer going away must be seen).
    private var paused: Bool {
        guard greeted, watch == nil, !closing else { return false }
        return !canStart || !waiting.isEmpty || !(context?.channel.isWritable ?? true)
    }

    private func greet(_ greeting: ByteBuffer) {
        guard let context, !greeted else { return }
        greeted = true
        if handshake != nil { session.certificateNames = ClientCertificate.names(in: context.pipeline.syncOperations) }
        context.writeAndFlush(wrapOutboundOut(greeting), promise: nil)
        resume()
    }

    /// Starts waiting requests while allowed, then reads again if nothing holds reading back.
    private func resume() {
        while canStart, let frame = waiting.popFirst() { start(frame) }
        writeReady()
        if !paused && readHeld, let context {
            readHeld = false
            context.read()
        }
    }

    private func start(_ frame: LineFrame) {
        guard let context else { return }  // removed from the pipeline: the connection is gone
        let text: String
        switch frame {
        case .tooLong:
            let error = NetleaseError.badRequest(
                "line longer than \(WireLimits.maxLineBytes) bytes; closing the connection"
            )
            logger.notice(
                "closed a connection that sent an oversized line",
                metadata: ["peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"]
            )
            closing = true
            slots.append(.error(error))
            nextSequence += 1
            return
        case .line(let line):
            text = line
        }
        if text.isEmpty { return }  // blank lines are ignored: handy when typing by hand
        let sequence = nextSequence
        nextSequence += 1
        slots.append(nil)
        let mailbox = self.mailbox
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let started = handler.start(Substring(text), session: &session) { outcome in
            if loop.inEventLoop {
                // Answered inside `start` (nothing was pending in the store): no hop needed.
                bound.value.fill(sequence, with: bound.value.handler.reply(to: outcome))
            } else if mailbox.post(sequence, outcome) {
                loop.execute { bound.value.collectMailbox() }
            }
        }
        switch started {
        case .reply(let reply):
            fill(sequence, with: admitted(reply))
            if session.closeRequested { closing = true }
        case .pending:
            break
        case .barrier(let request):
            barrier = true
            let handler = self.handler
            let session = self.session
            Task {
                var session = session
                let reply = await handler.respond(to: request, session: &session)
                let outcome = session
                loop.execute { bound.value.finishBarrier(sequence, reply: reply, session: outcome) }
            }
        }
    }

    /// After an AUTH: moves the connection to its new standing among the admission caps, or, when a cap refuses
    /// it (the reader cap is reached, or the connection was evicted meanwhile), answers `overloaded` and closes.
    private func admitted(_ reply: Reply) -> Reply {
        guard session.authenticated else { return reply }
        authTimer?.cancel()
        authTimer = nil
        guard let ticket, !ticket.promote(to: session.readOnly ? .reader : .authenticated) else { return reply }
        closing = true
        let limit = ticket.admission.limits.maxReaders
        logger.notice(
            "refused an authenticated connection: no slot for its credential",
            metadata: ["readOnly": "\(session.readOnly)", "maxReaders": "\(limit)"]
        )
        return .error(
            NetleaseError(
                .overloaded,
                session.readOnly
                    ? "too many read-only connections (at most \(limit)); try again later"
                    : "this connection gave way to newer ones before it authenticated; reconnect"
            )
        )
    }

    /// The connection did not authenticate in time: told why, then closed.
    private func authDeadlinePassed() {
        authTimer = nil
        guard let context, !session.authenticated else { return }
        logger.info(
            "closed a connection that did not authenticate in time",
            metadata: ["peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"]
        )
        closing = true
        if slots.isEmpty && !barrier && greeted {
            let error = NetleaseError(.authRequired, "no AUTH within \(authDeadline.map { "\($0)" } ?? "?"); closing")
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Reply.error(error).rendered)), promise: nil)
        }
        context.close(promise: nil)
    }

    private func finishBarrier(_ sequence: Int, reply: Reply, session: Session) {
        self.session = session
        barrier = false
        fill(sequence, with: reply)
        if let subscription = session.watch {
            watch = subscription
            self.session.watch = nil
        }
        if session.closeRequested { closing = true }
        resume()
    }

    private func collectMailbox() {
        for (sequence, outcome) in mailbox.take() { fill(sequence, with: handler.reply(to: outcome)) }
        resume()
    }

    private func fill(_ sequence: Int, with reply: Reply) {
        slots[slots.index(slots.startIndex, offsetBy: sequence - firstSlot)] = reply
    }

    /// Writes the replies at the front that are ready, in order, with one flush.
    private func writeReady() {
        guard let context else { return }
        var wrote = false
        while let first = slots.first, let reply = first {
            slots.removeFirst()
            firstSlot += 1
            context.write(wrapOutboundOut(ByteBuffer(string: reply.rendered)), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        if slots.isEmpty {
            // A burst of pipelined requests grew the buffers; an idle connection should not keep them.
            if slots.capacity > 16 { slots = CircularBuffer(initialCapacity: 4) }
            if waiting.isEmpty && waiting.capacity > 16 { waiting = CircularBuffer(initialCapacity: 2) }
        }
        if slots.isEmpty, watch != nil, !streaming { startStreaming(context) }
        closeIfDone()
    }

    private func closeIfDone() {
        guard let context, slots.isEmpty, !barrier, watch == nil else { return }
        if closing || (inputEnded && waiting.isEmpty) { context.close(promise: nil) }
    }

    // MARK: events

    /// From now on the connection carries events: buffered ones at once, later ones as they come, each batch
    /// with one flush, and only while the socket drains (a watcher that does not read is cut off by the hub when
    /// its buffer is full). Ends when the watcher is cut off, the peer goes away or the server stops.
    private func startStreaming(_ context: ChannelHandlerContext) {
        guard let watch else { return }
        streaming = true
        // An event stream legitimately sends nothing for a long time.
        try? context.pipeline.syncOperations.handler(type: LineFramer.self).liftIdleTimeout()
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: keepaliveInterval, delay: keepaliveInterval) {
            _ in watch.inject(.keepalive)
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        watch.onEvents {
            loop.execute { bound.value.writeEvents() }
        }
    }

    private func writeEvents() {
        guard let context, let watch, context.channel.isWritable else { return }
        let (events, ended) = watch.take()
        for event in events {
            context.write(wrapOutboundOut(ByteBuffer(string: event.rendered)), promise: nil)
        }
        if !events.isEmpty { context.flush() }
        if ended {
            endWatch()
            context.close(promise: nil)
        }
    }

    private func endWatch() {
        keepalive?.cancel()
        keepalive = nil
        if let watch { events.unsubscribe(watch.id) }
    }
}

/// Outcomes completed on the store's thread for one connection, collected until its event loop takes them.
private final class Mailbox: Sendable {
    private let items = Mutex<[(Int, RequestHandler.Outcome)]>([])

    /// Adds an outcome; true when the mailbox was empty, i.e. the caller must schedule a `take` on the event loop.
    func post(_ sequence: Int, _ outcome: RequestHandler.Outcome) -> Bool {
        items.withLock { items in
            items.append((sequence, outcome))
            return items.count == 1
        }
    }

    func take() -> [(Int, RequestHandler.Outcome)] {
        items.withLock { items in
            let taken = items
            items = []  // capacity goes with the taken batch: an idle connection holds no buffer
            return taken
        }
    }
}
