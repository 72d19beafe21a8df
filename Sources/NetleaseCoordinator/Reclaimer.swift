import Logging
import NetleaseCore
import NetleaseStore
import ServiceLifecycle
import Synchronization

/// Ends lost hosts' leases and finished cooldowns on a fixed interval.
///
/// Design notes: the reclaimer never counts time it did not observe (DESIGN.md invariant 7). Each pass measures, on
/// the monotonic clock, how long it has been since the previous pass ended. A pass that comes later than its interval
/// plus `stallTolerance` means the coordinator did not run meanwhile (SIGSTOP, a paused VM, a starved process): it
/// heard no heartbeat although hosts kept sending them into its frozen socket. That whole lateness is handed to the
/// store as unobserved time, which extends every up host's deadline by it before the pass reclaims anything (in one
/// operation under the store's lock, so no heartbeat can fall between). Ordinary timer lateness is milliseconds; the
/// tolerance keeps it from stretching deadlines pass after pass.
public struct Reclaimer: Service {
    let store: any LeaseStore
    let events: EventHub
    let interval: Duration
    let metrics: CoordinatorMetrics?
    let logger: Logger
    private let passes: PassTimer

    /// Lateness of a pass up to this much is ordinary scheduling, not a stall.
    public static let stallTolerance: Duration = .milliseconds(200)

    /// - Parameter monotonic: the monotonic clock stalls are measured on (tests move it by hand).
    public init(
        store: any LeaseStore,
        events: EventHub = EventHub(),
        interval: Duration = CoordinatorConfiguration.defaults.reclaimInterval,
        metrics: CoordinatorMetrics? = nil,
        logger: Logger = Logger(label: "netlease.reclaimer"),
        monotonic: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.store = store
        self.events = events
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
        passes = PassTimer(monotonic: monotonic)
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

    /// One pass: accounts for a stall since the previous pass, then reclaims, logs and announces hosts newly lost.
    public func reclaimOnce() async {
        let unobserved = passes.begin(interval: interval, tolerance: Self.stallTolerance)
        defer { passes.end() }
        do {
            let lost = try await store.reclaim(unobserved: Self.millis(unobserved))
            if unobserved > .zero {
                logger.warning(
                    "the coordinator stalled or was paused: every host's deadline was extended by that time",
                    metadata: ["unobserved": "\(unobserved)"]
                )
            }
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

    static func millis(_ duration: Duration) -> Millis {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// When the previous reclaim pass ended, on the monotonic clock.
private final class PassTimer: Sendable {
    private let monotonic: @Sendable () -> ContinuousClock.Instant
    private let lastEnd = Mutex<ContinuousClock.Instant?>(nil)

    init(monotonic: @escaping @Sendable () -> ContinuousClock.Instant) { self.monotonic = monotonic }

    /// The time since the previous pass beyond `interval`, when that exceeds `tolerance`; else zero (and at the
    /// first pass).
    func begin(interval: Duration, tolerance: Duration) -> Duration {
        guard let last = lastEnd.withLock({ $0 }) else { return .zero }
        let late = monotonic() - last - interval
        return late > tolerance ? late : .zero
    }

    func end() { lastEnd.withLock { $0 = monotonic() } }
}
