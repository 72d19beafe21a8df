import NIOCore
import NIOPosix

/// A connection that speaks no HTTP: it writes bytes as given and reads what the server sends, for tests of what a
/// server does before (or without) a well-formed request.
final class RawTestConnection {
    private let inbound: NIOAsyncChannelInboundStream<ByteBuffer>
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    private init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>)
    {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Connects to `address`, runs `body`, then closes. With `smallReceiveBuffer` the socket's receive buffer is
    /// kept at a few KiB: a test that stops reading soon leaves the server unable to send.
    static func connect<T>(
        to address: SocketAddress,
        smallReceiveBuffer: Bool = false,
        _ body: (RawTestConnection) async throws -> T
    ) async throws -> T {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if smallReceiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: 4096) }
        let channel = try await bootstrap.connect(to: address) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(RawTestConnection(inbound: inbound, outbound: outbound))
        }
    }

    func write(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    /// The next bytes the server sent; nil once it closed the connection.
    func read() async throws -> String? {
        var iterator = inbound.makeAsyncIterator()
        return try await iterator.next().map { String(buffer: $0) }
    }

    /// Everything the server sends until it closes the connection.
    func readAll() async throws -> String {
        var text = ""
        for try await buffer in inbound { text += String(buffer: buffer) }
        return text
    }
}
