import NIOCore
import NetleaseWire

/// One unit from the framing layer: a complete line, or the news that a line exceeded the cap.
public enum LineFrame: Sendable, Equatable {
    case line(String)
    /// The peer sent more than the maximum line length without a terminator. Nothing more is decoded after this.
    case tooLong
}

/// Splits a byte stream at LF and enforces the maximum line length (a CR before the LF is dropped). It only frames:
/// parsing belongs to `NetleaseWire`, acting to the handlers. (NIO's `LineBasedFrameDecoder` has no length cap;
/// this one must.)
struct LineSplitter {
    private let maxLength: Int
    /// Bytes at the front of the buffer already searched for LF.
    private var scanned = 0
    private(set) var overflowed = false

    init(maxLength: Int) { self.maxLength = maxLength }

    /// The next frame from the front of `buffer`, consuming it, or nil when `buffer` holds no complete line (the
    /// partial line stays in `buffer`). After `.tooLong`, everything is discarded and nil is returned.
    mutating func next(from buffer: inout ByteBuffer) -> LineFrame? {
        if overflowed {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return nil
        }
        let view = buffer.readableBytesView
        if let newline = view.dropFirst(scanned).firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - view.startIndex
            scanned = 0
            // A line of exactly maxLength bytes may carry a CR before its LF.
            let limit = maxLength + (length > 0 && view[newline - 1] == UInt8(ascii: "\r") ? 1 : 0)
            guard length <= limit else { return overflow(&buffer) }
            var line = buffer.readString(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.utf8.last == UInt8(ascii: "\r") { line.removeLast() }
            return .line(line)
        }
        scanned = view.count
        if scanned > maxLength + 1 { return overflow(&buffer) }
        return nil
    }

    private mutating func overflow(_ buffer: inout ByteBuffer) -> LineFrame {
        overflowed = true
        scanned = 0
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .tooLong
    }
}

/// `LineSplitter` as a `ByteToMessageDecoder`, for clients.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = LineFrame

    private var splitter: LineSplitter

    public init(maxLength: Int = WireLimits.maxLineBytes) {
        splitter = LineSplitter(maxLength: maxLength)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = splitter.next(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return splitter.overflowed ? .needMoreData : .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws
        -> DecodingState
    {
        // A final line without LF is discarded: a request counts only when its terminator arrived.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}

/// The server side of framing in one handler: splits lines (`LineSplitter`), closes a connection whose started
/// line stays unfinished for `lineTimeout` (slowloris) and one that sends nothing for `idleTimeout`. One handler
/// and at most two timers per connection instead of a decoder, two handlers and a timer each: servers hold
/// thousands of mostly idle connections.
public final class LineFramer: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = LineFrame

    private var splitter: LineSplitter
    private var buffer: ByteBuffer?
    private let idleTimeout: TimeAmount?
    private let lineTimeout: TimeAmount
    private var idleLifted = false
    private var lastRead = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var lineDeadline: Scheduled<Void>?
    /// When the unfinished line at the end of `buffer` started (nil: no unfinished line).
    private var partialSince: NIODeadline?
    private var inputEnded = false

    public init(maxLength: Int, idleTimeout: TimeAmount?, lineTimeout: TimeAmount) {
        splitter = LineSplitter(maxLength: maxLength)
        self.idleTimeout = idleTimeout
        self.lineTimeout = lineTimeout
    }

    /// Stops closing the connection for idleness: for connections that turned into event streams and
    /// legitimately send nothing.
    public func liftIdleTimeout() {
        idleLifted = true
        idleTimer?.cancel()
        idleTimer = nil
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armIdleTimer(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !inputEnded else { return }
        lastRead = context.eventLoop.now
        var incoming = unwrapInboundIn(data)
        if var pending = buffer {
            pending.writeBuffer(&incoming)
            incoming = pending
        }
        var completed = false
        while let frame = splitter.next(from: &incoming) {
            completed = true
            context.fireChannelRead(wrapInboundOut(frame))
        }
        if incoming.readableBytes == 0 {
            buffer = nil  // nothing kept for idle connections
            partialSince = nil
        } else {
            incoming.discardReadBytes()
            buffer = incoming
            // The deadline is per line: a pipelining client whose reads often end mid-line is never cut off.
            if completed || partialSince == nil { partialSince = lastRead }
            if lineDeadline == nil { schedule(.line, in: lineTimeout, context) }
        }
    }

    /// The two timers: each fires, then checks how long ago its reference point was (reads move it without
    /// touching the timer) and either closes the connection or waits for the rest.
    private enum Timer { case idle, line }

    private func schedule(_ timer: Timer, in delay: TimeAmount, _ context: ChannelHandlerContext) {
        let bound = NIOLoopBound((framer: self, context: context), eventLoop: context.eventLoop)
        let scheduled = context.eventLoop.scheduleTask(in: delay) {
            bound.value.framer.fired(timer, bound.value.context)
        }
        switch timer {
        case .idle: idleTimer = scheduled
        case .line: lineDeadline = scheduled
        }
    }

    private func fired(_ timer: Timer, _ context: ChannelHandlerContext) {
        let since: NIODeadline?
        let limit: TimeAmount?
        switch timer {
        case .idle:
            idleTimer = nil
            (since, limit) = (idleLifted ? nil : lastRead, idleTimeout)
        case .line:
            lineDeadline = nil
            (since, limit) = (partialSince, lineTimeout)
        }
        guard let since, let limit else { return }
        let elapsed = context.eventLoop.now - since
        if elapsed >= limit {
            context.close(promise: nil)
        } else {
            schedule(timer, in: limit - elapsed, context)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            // A final line without LF is discarded: a request counts only when its terminator arrived.
            inputEnded = true
            buffer = nil
            partialSince = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func armIdleTimer(_ context: ChannelHandlerContext) {
        guard let idleTimeout, !idleLifted, idleTimer == nil else { return }
        lastRead = context.eventLoop.now
        schedule(.idle, in: idleTimeout, context)
    }

    private func cancelTimers() {
        idleTimer?.cancel()
        idleTimer = nil
        lineDeadline?.cancel()
        lineDeadline = nil
    }
}
