import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A loopback listener that plays a misbehaving peer: it greets or not, and answers the first bytes a client sends
/// with a fixed text and then closes, or never answers at all. Only the transport is real; nothing here speaks
/// the protocol beyond the lines a test scripts.
final class ScriptedServer: Sendable {
    enum Answer: Sendable {
        /// Never writes anything after the greeting (if any).
        case silence
        /// On the first bytes read: writes this text (possibly a partial reply) and closes the connection.
        case writeThenClose(String)
        /// A standby: `OK` to each `AUTH`, `ERR not-leader` with this message to every other line.
        case standby(String)
    }

    private let channel: any Channel
    private let accepted: Counter
    /// TCP port, for a TCP listener.
    let port: Int

    private init(channel: any Channel, accepted: Counter) {
        self.channel = channel
        self.accepted = accepted
        port = channel.localAddress?.port ?? 0
    }

    /// Connections accepted so far.
    var connections: Int { accepted.value.load(ordering: .relaxed) }

    /// `greeting`: the first line sent on every connection; nil: the server never greets.
    static func tcp(greeting: String?, answer: Answer = .silence) async throws -> ScriptedServer {
        let accepted = Counter()
        let channel = try await bootstrap(greeting: greeting, answer: answer, accepted: accepted)
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedServer(channel: channel, accepted: accepted)
    }

    static func unix(path: String, greeting: String?, answer: Answer = .silence) async throws -> ScriptedServer {
        let accepted = Counter()
        let channel = try await bootstrap(greeting: greeting, answer: answer, accepted: accepted)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        return ScriptedServer(channel: channel, accepted: accepted)
    }

    private static func bootstrap(greeting: String?, answer: Answer, accepted: Counter) -> ServerBootstrap {
        ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                accepted.value.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedHandler(greeting: greeting, answer: answer))
                }
            }
    }

    /// Stops listening. Accepted connections end when their clients close them.
    func stop() async {
        try? await channel.close()
    }
}

private final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

private final class ScriptedHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let greeting: String?
    private let answer: ScriptedServer.Answer
    private var answered = false
    private var pending = ""

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
        if case .standby(let message) = answer {
            pending += String(buffer: unwrapInboundIn(data))
            while let end = pending.firstIndex(of: "\n") {
                let line = pending[..<end]
                pending = String(pending[pending.index(after: end)...])
                let reply = line.hasPrefix("AUTH ") ? "OK\n" : "ERR not-leader \(message)\n"
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
            }
            return
        }
        guard !answered, case .writeThenClose(let text) = answer else { return }
        answered = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }
}
