import Foundation
import NIOCore
import NIOPosix

/// A loopback listener that plays a misbehaving peer: it greets or not, and answers the first bytes a client sends
/// with a fixed text and then closes, or never answers at all. Only the transport is real; nothing here speaks
/// the protocol beyond the lines a test scripts.
final class ScriptedServer: Sendable {
    enum Answer: Sendable {
        /// Never writes anything after the greeting (if any).
        case silence
        /// On the first bytes read: writes this text (possibly a partial reply) and closes the connection.
        case writeThenClose(String)
    }

    private let channel: any Channel
    /// TCP port, for a TCP listener.
    let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    /// `greeting`: the first line sent on every connection; nil: the server never greets.
    static func tcp(greeting: String?, answer: Answer = .silence) async throws -> ScriptedServer {
        let channel = try await bootstrap(greeting: greeting, answer: answer).bind(host: "127.0.0.1", port: 0).get()
        return ScriptedServer(channel: channel)
    }

    static func unix(path: String, greeting: String?, answer: Answer = .silence) async throws -> ScriptedServer {
        let channel = try await bootstrap(greeting: greeting, answer: answer)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        return ScriptedServer(channel: channel)
    }

    private static func bootstrap(greeting: String?, answer: Answer) -> ServerBootstrap {
        ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedHandler(greeting: greeting, answer: answer))
                }
            }
    }

    /// Stops listening. Accepted connections end when their clients close them.
    func stop() async {
        try? await channel.close()
    }
}

private final class ScriptedHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let greeting: String?
    private let answer: ScriptedServer.Answer
    private var answered = false

    init(greeting: String?, answer: ScriptedServer.Answer) {
        self.greeting = greeting
        self.answer = answer
    }

    func channelActive(context: ChannelHandlerContext) {
        if let greeting {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting + "\n")), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered, case .writeThenClose(let text) = answer else { return }
        answered = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }
}
