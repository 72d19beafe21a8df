import Logging
import NIOCore
import NetleaseTransport

/// The operations side door every daemon opens on an optional HTTP address:
/// - `GET /metrics`: the daemon's metrics in Prometheus's text format;
/// - `GET /healthz`: 200 whenever the process answers at all (liveness);
/// - `GET /readyz`: 200 when the daemon can do its job, else 503 with one line per unmet condition.
public enum MetricsEndpoint {
    /// The routes; `metrics` renders a scrape, `readiness` says what is not ready.
    public static func routes(
        metrics: @escaping @Sendable () async throws -> String,
        readiness: @escaping @Sendable () async -> Readiness
    ) -> HTTPRoutes {
        var routes = HTTPRoutes()
        routes.add(.GET, "/metrics") { _ in
            .text(.ok, try await metrics(), contentType: PrometheusText.contentType)
        }
        routes.add(.GET, "/healthz") { _ in .text(.ok, "ok\n") }
        routes.add(.GET, "/readyz") { _ in
            let readiness = await readiness()
            guard readiness.isReady else {
                return .text(.serviceUnavailable, readiness.unmet.map { "not ready: \($0)\n" }.joined())
            }
            return .text(.ok, "ready\n")
        }
        return routes
    }

    /// An HTTP server with these routes on `address`, as a service to run beside the daemon.
    public static func server(
        address: HTTPServer.Address,
        logger: Logger,
        onListening: @escaping @Sendable (SocketAddress) -> Void,
        metrics: @escaping @Sendable () async throws -> String,
        readiness: @escaping @Sendable () async -> Readiness
    ) -> HTTPServer {
        HTTPServer(
            configuration: .init(address: address, maxBodyBytes: 4096),
            routes: routes(metrics: metrics, readiness: readiness),
            logger: logger,
            onListening: onListening
        )
    }
}
