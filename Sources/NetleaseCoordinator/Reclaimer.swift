import Logging
import NetleaseCore
import NetleaseStore
import ServiceLifecycle

/// Ends lost hosts' leases and finished cooldowns on a fixed interval.
public struct Reclaimer: Service {
    let store: any LeaseStore
    let events: EventHub
    let interval: Duration
    let metrics: CoordinatorMetrics?
    let logger: Logger

    public init(
        store: any LeaseStore,
        events: EventHub = EventHub(),
        interval: Duration = CoordinatorConfiguration.defaults.reclaimInterval,
        metrics: CoordinatorMetrics? = nil,
        logger: Logger = Logger(label: "netlease.reclaimer")
    ) {
        self.store = store
        self.events = events
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        // Sleeping is cancelled by graceful shutdown, so the reclaimer never delays a stop by an interval.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await reclaimOnce()
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One pass: reclaims, logs and announces hosts newly lost.
    public func reclaimOnce() async {
        do {
            let lost = try await store.reclaim()
            guard !lost.isEmpty else { return }
            metrics?.hostsReclaimed(lost.count)
            let hosts = try await store.hosts()
            for host in hosts where lost.contains(host.name) {
                logger.warning(
                    "host missed heartbeats for its lease TTL: marked lost, leases moved to cooldown",
                    metadata: ["host": "\(host.name)"]
                )
                events.publish(.host(host))
            }
        } catch let error as NetleaseError where error.code == .notLeader {
            return  // a standby, or a leader whose lease ran out: the leader reclaims
        } catch {
            logger.error("reclaim failed", metadata: ["error": "\(error)"])
        }
    }
}
