import Logging
import NIOCore
import NetleaseMetrics
import NetleaseTransport

extension Agent {
    /// The agent's operations endpoint on `address`: `/metrics`, `/healthz`, `/readyz`. A service to run beside the
    /// agent (it answers from the start: `/readyz` says what the agent still waits for).
    public func metricsServer(
        address: HTTPServer.Address,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) -> HTTPServer {
        MetricsEndpoint.server(
            address: address,
            logger: logger,
            onListening: onListening,
            metrics: { self.metricsExposition() },
            readiness: { self.readiness() }
        )
    }

    /// Ready: every served network configured and verified in a live coordinator session, the local API open, each
    /// network's address pool filled the first time since the agent started, and no network whose drift the last
    /// resync could not repair.
    public func readiness() -> Readiness {
        let (session, lastError, localAPIOpen, primed, resyncFailures) = state.withLock {
            ($0.session, $0.lastError, $0.localAPIOpen, $0.pool.primed, $0.resyncFailures)
        }
        var unmet: [String] = []
        if session == nil {
            let why = lastError.map { "no coordinator session: \($0)" } ?? "no coordinator session yet"
            unmet.append("network(s) \(configuration.networks.joined(separator: ", ")) not verified (\(why))")
        }
        if !localAPIOpen {
            unmet.append("local API \(configuration.socketPath) not open (it opens once every network is verified)")
        }
        let filling = configuration.networks.filter { !primed.contains($0) }
        if !filling.isEmpty {
            unmet.append(
                "address pool of \(filling.joined(separator: ", ")) still filling the first time (full ARP probes)"
            )
        }
        for (network, problem) in resyncFailures.sorted(by: { $0.key < $1.key }) {
            unmet.append("network \(network): its host side drifted and the repair did not take: \(problem)")
        }
        return Readiness(unmet: unmet)
    }

    /// Counts a hand-out to a local consumer by result, with its duration: ACQUIRE and ATTACH on the local API, and
    /// whatever else hands out addresses for a runtime (a Docker IPAM request belongs here too).
    func countingAttach<T>(_ body: () async throws -> T) async throws -> T {
        let began = ContinuousClock.now
        do {
            let result = try await body()
            metrics.attachEnded(error: nil, duration: .now - began)
            return result
        } catch {
            metrics.attachEnded(error: error, duration: .now - began)
            throw error
        }
    }

    func metricsExposition() -> String {
        let (directory, connected) = state.withLock { ($0.directory, $0.session != nil) }
        let peers = configuration.networks.map { ($0, directory?.peers(of: $0).count ?? 0) }
        return metrics.exposition(peers: peers, connected: connected)
    }
}
