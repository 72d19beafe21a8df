import Foundation
import Logging
import NIOCore
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseStore
import ServiceLifecycle
import NetleaseTransport

/// For tests: the real coordinator assembly (server, reclaimer, trimmer) on 127.0.0.1, port 0, with a store in a
/// temporary directory. Stopped with a graceful shutdown.
public final class CoordinatorHarness: @unchecked Sendable {
    // @unchecked: fields are set once in `start` before the harness is shared, and only read afterwards.
    public let directory: URL
    public let store: SQLiteLeaseStore
    public let secret: ClusterSecret?
    public let readerSecret = ClusterSecret("reader-secret")
    public let events = EventHub()
    public private(set) var endpoint = Endpoint(host: "127.0.0.1", port: 0)
    private var group: ServiceGroup?
    private var runTask: Task<Void, Error>?

    public init(secret: ClusterSecret? = ClusterSecret("test-secret"), clock: LeaseClock = SystemLeaseClock(),
         directory: URL? = nil) throws {
        self.directory = directory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-test-\(UUID().uuidString)")
        self.secret = secret
        store = try SQLiteLeaseStore(directory: self.directory.path, clock: clock)
    }

    public static func start(
        secret: ClusterSecret? = ClusterSecret("test-secret"), clock: LeaseClock = SystemLeaseClock(),
        maxConnections: Int = CoordinatorConfiguration.defaults.maxConnections,
        idleTimeout: Duration = CoordinatorConfiguration.defaults.idleTimeout,
        lineTimeout: Duration = CoordinatorConfiguration.defaults.lineTimeout,
        reclaimInterval: Duration = CoordinatorConfiguration.defaults.reclaimInterval,
        directory: URL? = nil, port: Int = 0, tls: TLSSettings? = nil
    ) async throws -> CoordinatorHarness {
        let harness = try CoordinatorHarness(secret: secret, clock: clock, directory: directory)
        try await harness.run(
            CoordinatorConfiguration(
                host: "127.0.0.1", port: port, secret: secret, readerSecret: secret == nil ? nil : harness.readerSecret,
                maxConnections: maxConnections, idleTimeout: idleTimeout, lineTimeout: lineTimeout,
                reclaimInterval: reclaimInterval, tls: tls))
        return harness
    }

    /// `configuration.tls`: the coordinator's TLS settings (clients then need their own, passed to `connect`).
    private func run(_ configuration: CoordinatorConfiguration) async throws {
        var logger = Logger(label: "test.coordinator")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let coordinator = Coordinator(configuration: configuration, store: store, events: events, logger: logger) {
            address in
            continuation.yield(address.port ?? 0)
            continuation.finish()
        }
        let group = ServiceGroup(services: [coordinator], logger: logger)
        self.group = group
        let runTask = Task {
            // A coordinator that stops before it listens (e.g. the port is taken) ends the wait below.
            defer { continuation.finish() }
            try await group.run()
        }
        self.runTask = runTask
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await runTask.value  // throws why it stopped
            throw NetleaseError(.unavailable, "the coordinator stopped before it listened")
        }
        endpoint = Endpoint(host: "127.0.0.1", port: port)
    }

    public func stop(removeFiles: Bool = true) async {
        await group?.triggerGracefulShutdown()
        _ = try? await runTask?.value
        store.close()
        if removeFiles { try? FileManager.default.removeItem(at: directory) }
    }

    /// Connects a client; `tls` is the client's side (its certificate, key and the CA) for a TLS harness.
    public func connect<T: Sendable>(
        authenticated: Bool = true, tls: TLSSettings? = nil, _ body: (NetleaseConnection) async throws -> T
    ) async throws -> T {
        try await NetleaseConnection.connect(to: endpoint, secret: authenticated ? secret?.text : nil, tls: tls, body)
    }
}
