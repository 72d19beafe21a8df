import Logging
import NIOCore
import NetleaseMetrics
import NetleaseTransport
import Synchronization

extension Coordinator {
    /// The coordinator's operations endpoint on `address`: `/metrics`, `/healthz`, `/readyz`. A service to run
    /// beside the coordinator; list it before the coordinator in a `ServiceGroup` so that it stops last and
    /// `/readyz` answers 503 while the coordinator drains.
    public func metricsServer(
        address: HTTPServer.Address,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) -> HTTPServer {
        let handler = server.handler
        let metrics = self.metrics
        return MetricsEndpoint.server(
            address: address,
            logger: logger,
            onListening: onListening,
            metrics: { metrics.exposition(try await handler.snapshot()) },
            readiness: { await self.readiness() }
        )
    }

    /// Ready: accepting connections, and the store answers a read (a store that failed to reload after a failed
    /// commit refuses everything).
    public func readiness() async -> Readiness {
        var unmet: [String] = []
        if !serving.value {
            unmet.append("coordinator: not accepting connections (starting or stopping)")
        }
        do {
            _ = try await store.networks()
        } catch {
            unmet.append("store: \(error)")
        }
        return Readiness(unmet: unmet)
    }
}

/// Whether the coordinator accepts connections.
final class ServingFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    var value: Bool { flag.load(ordering: .acquiring) }
    func set(_ value: Bool) { flag.store(value, ordering: .releasing) }
}
