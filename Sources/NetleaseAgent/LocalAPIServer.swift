import Logging
import NIOCore
import NetleaseTransport

/// The agent's unix socket for local consumers. It opens only after the first full setup (invariant 5), is made
/// usable by `socketGroup` (mode 0660), and speaks the local API through `LocalAPIHandler`.
struct LocalAPIServer: Sendable {
    /// Local consumers are this host's runtimes and operators: far fewer than a coordinator's clients.
    static let maxConnections = 256
    /// A runtime keeps no connection open between requests; an idle one is a leftover.
    static let idleTimeout: Duration = .seconds(120)

    let socketPath: String
    let socketGroup: String?
    let files: LocalFileSystem
    let logger: Logger

    /// Serves until cancelled; `onReady` gets the socket path once it listens with its mode and group set.
    func run(handler: LocalAPIHandler, onReady: @escaping @Sendable (String) -> Void) async throws {
        let server = LineServer(
            configuration: .init(
                address: .unix(path: socketPath),
                maxConnections: Self.maxConnections,
                idleTimeout: Self.idleTimeout
            ),
            logger: logger
        )
        try await server.run(
            onListening: { _ in
                openToGroup()
                logger.info("local API ready", metadata: ["socket": "\(socketPath)"])
                onReady(socketPath)
            },
            handler: { connection in
                try await handler.serve(connection)
            }
        )
    }

    /// A socket that cannot be opened to its group still serves root; the log says why others are refused.
    private func openToGroup() {
        do {
            try files.setMode(0o660, of: socketPath)
            if let socketGroup { try files.setGroup(socketGroup, of: socketPath) }
        } catch {
            logger.warning("cannot open the local API socket to its group", metadata: ["error": "\(error)"])
        }
    }
}
