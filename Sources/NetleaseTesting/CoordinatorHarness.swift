import Foundation
import Logging
import NIOCore
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseStore
import NetleaseTransport
import ServiceLifecycle

/// For tests: the real coordinator assembly (server, reclaimer, trimmer) on 127.0.0.1, port 0, with a store in a
/// temporary directory. Stopped with a graceful shutdown.
public final class CoordinatorHarness: @unchecked Sendable {
    // @unchecked: fields are set once in `start` before the harness is shared, and only read afterwards.
    public let directory: URL
    public let store: SQLiteLeaseStore
    public let secret: ClusterSecret?
    public let readerSecret = ClusterSecret("reader-secret")
    public let events = EventHub()
    /// The coordinator's metrics; the store reports its commits to them.
    public let metrics = CoordinatorMetrics()
    public private(set) var endpoint = Endpoint(host: "127.0.0.1", port: 0)
    /// The port of `/metrics`, `/healthz` and `/readyz` on 127.0.0.1 when started with `metrics: true`.
    public private(set) var metricsPort: Int?
    private var group: ServiceGroup?
    private var runTask: Task<Void, Error>?

    public init(
        secret: ClusterSecret? = ClusterSecret("test-secret"),
        clock: LeaseClock = SystemLeaseClock(),
        directory: URL? = nil
    ) throws {
        self.directory =
            directory
            ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-test-\(UUID().uuidString)")
        self.secret = secret
        store = try SQLiteLeaseStore(directory: self.directory.path, clock: clock, commitObserver: metrics)
    }

    public static func start(
        secret: ClusterSecret? = ClusterSecret("test-secret"),
        clock: LeaseClock = SystemLeaseClock(),
        maxConnections: Int = CoordinatorConfiguration.defaults.maxConnections,
        idleTimeout: Duration = CoordinatorConfiguration.defaults.idleTimeout,
        lineTimeout: Duration = CoordinatorConfiguration.defaults.lineTimeout,
        authTimeout: Duration = CoordinatorConfiguration.defaults.authTimeout,
        admission: ConnectionAdmission.Limits = CoordinatorConfiguration.defaults.admission,
        reclaimInterval: Duration = CoordinatorConfiguration.defaults.reclaimInterval,
        directory: URL? = nil,
        port: Int = 0,
        tls: TLSSettings? = nil,
        tlsAdminSubjects: Set<String> = [],
        metrics: Bool = false,
        serving: @Sendable (SQLiteLeaseStore) -> any LeaseStore = { $0 }
    ) async throws -> CoordinatorHarness {
        let harness = try CoordinatorHarness(secret: secret, clock: clock, directory: directory)
        do {
            try await harness.run(
                CoordinatorConfiguration(
                    host: "127.0.0.1",
                    port: port,
                    secret: secret,
                    readerSecret: secret == nil ? nil : harness.readerSecret,
                    maxConnections: maxConnections,
                    idleTimeout: idleTimeout,
                    lineTimeout: lineTimeout,
                    authTimeout: authTimeout,
                    admission: admission,
                    reclaimInterval: reclaimInterval,
                    tls: tls,
                    tlsAdminSubjects: tlsAdminSubjects
                ),
                metrics: metrics,
                serving: serving(harness.store)
            )
        } catch {
            // A failed start leaves nothing behind: the store is closed and a directory made here is removed (one
            // the caller handed in stays theirs).
            await harness.stop(removeFiles: directory == nil)
            throw error
        }
        return harness
    }

    /// `configuration.tls`: the coordinator's TLS settings (clients then need their own, passed to `connect`).
    /// `metrics`: also serve the metrics endpoint on 127.0.0.1, port 0. `serving`: the store the coordinator uses
    /// (`store`, or a test's wrapper around it).
    private func run(
        _ configuration: CoordinatorConfiguration,
        metrics serveMetrics: Bool,
        serving: any LeaseStore
    ) async throws {
        var logger = Logger(label: "test.coordinator")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let (metricsPorts, metricsContinuation) = AsyncStream.makeStream(of: Int.self)
        let coordinator = Coordinator(
            configuration: configuration,
            store: serving,
            events: events,
            metrics: metrics,
            logger: logger
        ) { address in
            continuation.yield(address.port ?? 0)
            continuation.finish()
        }
        var services: [any Service] = []
        if serveMetrics {
            // Listed first, so it stops last, as operators run it.
            services.append(
                coordinator.metricsServer(address: .tcp(host: "127.0.0.1", port: 0)) { address in
                    metricsContinuation.yield(address.port ?? 0)
                    metricsContinuation.finish()
                }
            )
        } else {
            metricsContinuation.finish()
        }
        services.append(coordinator)
        let group = ServiceGroup(services: services, logger: logger)
        self.group = group
        let runTask = Task {
            // A coordinator that stops before it listens (e.g. the port is taken) ends the waits below.
            defer {
                continuation.finish()
                metricsContinuation.finish()
            }
            try await group.run()
        }
        self.runTask = runTask
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await runTask.value  // throws why it stopped
            throw NetleaseError(.unavailable, "the coordinator stopped before it listened")
        }
        endpoint = Endpoint(host: "127.0.0.1", port: port)
        var metricsIterator = metricsPorts.makeAsyncIterator()
        metricsPort = await metricsIterator.next()
        if serveMetrics && metricsPort == nil {
            try await runTask.value
            throw NetleaseError(.unavailable, "the coordinator's metrics endpoint stopped before it listened")
        }
    }

    public func stop(removeFiles: Bool = true) async {
        await group?.triggerGracefulShutdown()
        _ = try? await runTask?.value
        store.close()
        if removeFiles { try? FileManager.default.removeItem(at: directory) }
    }

    /// Connects a client; `tls` is the client's side (its certificate, key and the CA) for a TLS harness.
    public func connect<T: Sendable>(
        authenticated: Bool = true,
        tls: TLSSettings? = nil,
        _ body: (NetleaseConnection) async throws -> T
    ) async throws -> T {
        try await NetleaseConnection.connect(to: endpoint, secret: authenticated ? secret?.text : nil, tls: tls, body)
    }
}
