import Foundation
import Logging
import NIOCore
import NetleaseCore
import NetleaseStore
import NetleaseTransport
import ServiceLifecycle

/// The whole coordinator from one configuration and one store: the event hub, the TCP server, the reclaimer and
/// the memory trimmer, run together as one service. The CLI and the test harness build exactly this, so what the
/// tests run is what operators run.
public struct Coordinator: Service {
    public let configuration: CoordinatorConfiguration
    public let store: any LeaseStore
    public let events: EventHub
    /// This coordinator's metrics; `metricsServer` serves them.
    public let metrics: CoordinatorMetrics
    let server: CoordinatorServer
    let reclaimer: Reclaimer
    let logger: Logger
    /// Accepting connections: set once listening, cleared when a graceful shutdown begins (readiness).
    let serving = ServingFlag()

    /// - Parameters:
    ///   - metrics: where this coordinator counts; give the store the same object as its `CommitObserver`.
    ///   - onListening: called once the server accepts connections, with the bound address (port 0 resolved).
    public init(
        configuration: CoordinatorConfiguration,
        store: any LeaseStore,
        events: EventHub = EventHub(),
        metrics: CoordinatorMetrics = CoordinatorMetrics(),
        logger: Logger = Logger(label: "netlease.coordinator"),
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.store = store
        self.events = events
        self.metrics = metrics
        self.logger = logger
        let serving = self.serving
        server = CoordinatorServer(
            configuration: configuration,
            store: store,
            events: events,
            metrics: metrics,
            logger: logger
        ) { address in
            serving.set(true)
            onListening(address)
        }
        // Its own label, at the coordinator's level: a quiet coordinator (tests) has a quiet reclaimer.
        var reclaimerLogger = Logger(label: "netlease.reclaimer")
        reclaimerLogger.logLevel = logger.logLevel
        reclaimer = Reclaimer(
            store: store,
            events: events,
            interval: configuration.reclaimInterval,
            metrics: metrics,
            logger: reclaimerLogger
        )
    }

    /// Closes every client connection (a coordinator that stopped leading); new ones are still accepted.
    public func closeConnections() {
        server.closeConnections()
    }

    /// Runs until graceful shutdown (or cancellation); the server, the reclaimer and the trimmer stop together.
    /// The inner group follows the caller's graceful shutdown and stops its services in reverse order (trimmer,
    /// reclaimer, then the server, which closes its listener and every connection); if any of them fails, the
    /// others are cancelled and the error is rethrown.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server), .init(service: reclaimer), .init(service: MemoryTrimmer())],
                logger: logger
            )
        )
        let serving = self.serving
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            serving.set(false)
        }
        serving.set(false)
    }

    /// Loads the cluster secret and the reader secret from `directory`, creating each (random, mode 0600) when
    /// missing. Files readable by group or others are refused.
    public static func loadOrCreateSecrets(
        in directory: String,
        logger: Logger
    ) throws
        -> (secret: ClusterSecret, reader: ClusterSecret)
    {
        let path = (directory as NSString).appendingPathComponent(ClusterSecret.fileName)
        let (secret, created) = try ClusterSecret.loadOrCreate(at: path)
        if created { logger.notice("created cluster secret", metadata: ["path": "\(path)"]) }
        let readerPath = (directory as NSString).appendingPathComponent(ClusterSecret.readerFileName)
        let (reader, readerCreated) = try ClusterSecret.loadOrCreate(at: readerPath)
        if readerCreated { logger.notice("created read-only secret", metadata: ["path": "\(readerPath)"]) }
        return (secret, reader)
    }
}
