import Logging
import NIOCore
import NIOHTTP1
import NetleaseTransport

/// Docker's remote plugin API on a unix socket: HTTP/1.1 from `HTTPServer`, every answer from `DockerIPAMPlugin`.
struct DockerPluginServer: Sendable {
    /// The calls Docker makes of an IPAM plugin; any other path is answered 404 by the server.
    static let paths = [
        "/Plugin.Activate", "/IpamDriver.GetCapabilities", "/IpamDriver.GetDefaultAddressSpaces",
        "/IpamDriver.RequestPool", "/IpamDriver.ReleasePool", "/IpamDriver.RequestAddress",
        "/IpamDriver.ReleaseAddress", "/IpamDriver.DiscoverNew", "/IpamDriver.DiscoverDelete",
    ]

    let socketPath: String
    let plugin: DockerIPAMPlugin
    let files: LocalFileSystem
    let logger: Logger

    /// Serves until cancelled or shut down gracefully.
    func run() async throws {
        var routes = HTTPRoutes()
        let plugin = self.plugin
        for path in Self.paths {
            routes.add(.POST, path) { request in
                let reply = await plugin.handle(
                    method: request.method.rawValue,
                    path: String(request.path),
                    body: Array(buffer: request.body)
                )
                return HTTPServerResponse(
                    status: HTTPResponseStatus(statusCode: reply.status),
                    headers: HTTPHeaders([("Content-Type", DockerPluginAPI.contentType)]),
                    body: ByteBuffer(bytes: reply.body)
                )
            }
        }
        let logger = self.logger
        let socketPath = self.socketPath
        let files = self.files
        let server = HTTPServer(
            configuration: .init(address: .unix(path: socketPath)),
            routes: routes,
            logger: logger,
            onListening: { _ in
                // Docker (root) is the only client: ReleaseAddress finds its owner by address alone, so anyone else
                // who could connect could release a running container's address. The mode was the umask's.
                do {
                    try files.setMode(0o600, of: socketPath)
                } catch {
                    logger.error("cannot make the Docker plugin socket root-only", metadata: ["error": "\(error)"])
                }
                logger.notice("Docker IPAM plugin API listening", metadata: ["socket": "\(socketPath)"])
            }
        )
        try await server.run()
    }
}

extension Agent {
    /// Serves Docker's IPAM plugin API for this agent until cancelled, and finishes the releases Docker asked for
    /// while the coordinator was out of reach.
    func serveDockerPlugin(at path: String) async throws {
        let backend = DockerAgentBackend(
            agent: self,
            backlog: try DockerReleaseBacklog(directory: configuration.stateDirectory, files: files)
        )
        let server = DockerPluginServer(
            socketPath: path,
            plugin: DockerIPAMPlugin(backend: backend, logger: logger),
            files: files,
            logger: logger
        )
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await backend.runBacklog() }
            try await server.run()
            group.cancelAll()
        }
    }
}
