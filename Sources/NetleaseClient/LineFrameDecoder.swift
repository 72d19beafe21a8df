import NIOCore
import NetleaseWire

/// One unit from the framing layer: a complete line, or the news that a line exceeded the cap.
public enum LineFrame: Sendable, Equatable {
    case line(String)
    /// The peer sent more than the maximum line length without a terminator. Nothing more is decoded after this.
    case tooLong
}

/// Splits the byte stream at LF and enforces the maximum line length. It only frames: parsing belongs to
/// `NetleaseWire`, acting to the handlers. (NIO's `LineBasedFrameDecoder` has no length cap; this one must.)
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = LineFrame

    private let maxLength: Int
    private var scanned = 0
    private var overflowed = false

    public init(maxLength: Int = WireLimits.maxLineBytes) {
        self.maxLength = maxLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if overflowed {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        }
        let view = buffer.readableBytesView
        if let newline = view.dropFirst(scanned).firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - view.startIndex
            scanned = 0
            // A line of exactly maxLength bytes may carry a CR before its LF.
            let limit = maxLength + (length > 0 && view[newline - 1] == UInt8(ascii: "\r") ? 1 : 0)
            guard length <= limit else { return overflow(context: context, buffer: &buffer) }
            var line = buffer.readString(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.utf8.last == UInt8(ascii: "\r") { line.removeLast() }
            context.fireChannelRead(wrapInboundOut(.line(line)))
            return .continue
        }
        scanned = view.count
        if scanned > maxLength + 1 { return overflow(context: context, buffer: &buffer) }
        return .needMoreData
    }

    private mutating func overflow(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> DecodingState {
        overflowed = true
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        context.fireChannelRead(wrapInboundOut(.tooLong))
        return .needMoreData
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        // A final line without LF is discarded: a request counts only when its terminator arrived.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}
