import NetleaseCore
import NetleaseMetrics
import NetleaseStore
import NetleaseWire
import Prometheus
import Synchronization

/// A coordinator's metrics (names and labels are a contract: docs/OPERATIONS.md, "Metrics").
///
/// One registry per coordinator, handed in or made here: nothing is bootstrapped globally, so tests run many
/// coordinators in one process. Three kinds of series:
/// - counted where they happen: requests by verb and result (`start` and the store's completions), commits (the
///   store's `CommitObserver`), reclaims and conflicts;
/// - request durations per verb, in lock-free `AtomicHistogram`s rendered at scrape time (measurement there);
/// - gauges derived at scrape time from `CoordinatorSnapshot`, the same read STATS reports from.
///
/// The instruments are swift-prometheus's own types used through its registry, not swift-metrics' `Counter` and
/// `Timer` fronts: those carry no HELP text, and `promtool check metrics` flags every family without one.
public final class CoordinatorMetrics: CommitObserver, Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Label values of `verb`: the wire's verbs, and `unknown` for lines that name none.
    static let verbs = Request.Verb.allCases
    static let verbLabels = verbs.map(\.rawValue) + ["unknown"]
    /// Label values of `result`: `ok`, or the error code of the reply.
    static let codes = ErrorCode.allCases
    static let resultLabels = ["ok"] + codes.map(\.rawValue)

    static let requestDurationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
    ]
    static let commitDurationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1),
    ]
    /// Powers of two up to the store's largest batch.
    static let commitBatchBuckets: [Double] = (0...12).map { Double(1 << $0) }

    /// `netlease_requests_total` per (verb, result), registered on first use: a series appears once it counts
    /// something instead of 22 × 15 zeros. Afterwards counting is an atomic load and an atomic add.
    private let requestCounters: [LazyCounter]
    private let requestDurations: [AtomicHistogram]
    private let commitBatchSize: ValueHistogram
    private let commitDuration: DurationHistogram
    private let reclaims: Counter
    private let conflicts: Counter
    private let gauges: ScrapedGauges
    /// One scrape at a time: setting the gauges and emitting them belong together.
    private let scraping = Mutex(())

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        requestCounters = (0..<(Self.verbLabels.count * Self.resultLabels.count)).map { _ in LazyCounter() }
        let bounds = AtomicHistogram(durations: Self.requestDurationBuckets).bounds
        requestDurations = Self.verbLabels.map { _ in AtomicHistogram(bounds: bounds) }
        // Per commit, on the store's single writer thread: swift-prometheus's locked histograms (≈ 80 ns CPU an
        // observation, see AtomicHistogram) are noise beside a commit's transaction and fsync.
        commitBatchSize = registry.makeValueHistogram(
            descriptor: .init(
                metricName: "netlease_commit_batch_size",
                unitName: "",
                helpText: "Operations per durable commit (group commit)."
            ),
            buckets: Self.commitBatchBuckets
        )
        commitDuration = registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "netlease_commit_duration",
                unitName: "seconds",
                helpText: "Time of one durable commit: its writes and the fsync."
            ),
            buckets: Self.commitDurationBuckets
        )
        reclaims = registry.makeCounter(
            descriptor: .init(
                metricName: "netlease_reclaims",
                unitName: "total",
                helpText: "Hosts declared lost after missing heartbeats for their lease TTL; their leases went to "
                    + "cooldown."
            )
        )
        conflicts = registry.makeCounter(
            descriptor: .init(
                metricName: "netlease_conflicts",
                unitName: "total",
                helpText: "Addresses quarantined after an agent's ARP probe found them in use."
            )
        )
        gauges = ScrapedGauges(registry: registry)
    }

    // MARK: counted where it happens

    /// A request was answered: counts it by verb (nil: the line named no verb) and result, and records how long it
    /// took since `begun`. No lock and no allocation once its series exists.
    func requestEnded(_ verb: Request.Verb?, error: (any Error)?, since begun: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - begun
        let verbIndex = verb.flatMap { Self.verbs.firstIndex(of: $0) } ?? Self.verbs.count
        var resultIndex = 0
        if let error {
            let code = (error as? NetleaseError)?.code ?? .internalError
            resultIndex = 1 + (Self.codes.firstIndex(of: code) ?? 0)
        }
        requestDurations[verbIndex].record(elapsed)
        requestCounter(verb: verbIndex, result: resultIndex).increment()
    }

    private func requestCounter(verb: Int, result: Int) -> Counter {
        let cell = requestCounters[verb * Self.resultLabels.count + result]
        if let counter = cell.counter.load() { return counter }
        return cell.counter.storeIfNil(
            registry.makeCounter(
                descriptor: .init(
                    metricName: "netlease_requests",
                    unitName: "total",
                    helpText: "Requests answered, by verb and result (ok or the error code)."
                ),
                labels: [("verb", Self.verbLabels[verb]), ("result", Self.resultLabels[result])]
            )
        )
    }

    public func committed(operations: Int, duration: Duration) {
        commitBatchSize.record(Double(operations))
        commitDuration.record(duration)
    }

    func hostsReclaimed(_ count: Int) {
        if count > 0 { reclaims.increment(by: Int64(count)) }
    }

    func conflictReported() { conflicts.increment() }

    // MARK: scrape

    /// The scrape answer: the registry's series with the gauges set from `snapshot`, then the request durations.
    public func exposition(_ snapshot: CoordinatorSnapshot) -> String {
        scraping.withLock { _ in
            gauges.update(Self.gaugeSamples(snapshot))
            var text = registry.emitToString()
            PrometheusText.appendHistogram(
                "netlease_request_duration_seconds",
                help: "Time from reading a request to its reply being ready (after its commit), by verb.",
                bounds: requestDurations[0].bounds,
                scale: 1e9,
                series: zip(Self.verbLabels, requestDurations).map { ([("verb", $0)], $1.snapshot()) },
                to: &text
            )
            return text
        }
    }

    static func gaugeSamples(_ snapshot: CoordinatorSnapshot) -> [GaugeSample] {
        var samples: [GaugeSample] = []
        let leasesHelp = "Address records by network and state (active, reserved, conflict, cooldown)."
        let poolHelp = "Addresses of a network's pool by kind: free, leased, reserved, cooldown, conflict."
        for summary in snapshot.networks {
            let name = summary.spec.name
            let c = summary.counts
            for (state, count) in [
                ("active", c.active), ("reserved", c.reserved), ("conflict", c.conflict),
                ("cooldown", c.cooldown),
            ] {
                samples.append(
                    GaugeSample(
                        "netlease_leases",
                        help: leasesHelp,
                        labels: [("network", name), ("state", state)],
                        value: Double(count)
                    )
                )
            }
            for (kind, count) in [
                ("free", Double(c.free)), ("leased", Double(c.active)),
                ("reserved", Double(c.reserved)), ("cooldown", Double(c.cooldown)),
                ("conflict", Double(c.conflict)),
            ] {
                samples.append(
                    GaugeSample(
                        "netlease_pool_addresses",
                        help: poolHelp,
                        labels: [("network", name), ("kind", kind)],
                        value: count
                    )
                )
            }
        }
        for state in HostState.allCases {
            samples.append(
                GaugeSample(
                    "netlease_hosts",
                    help: "Hosts known to the coordinator, by state (up, lost).",
                    labels: [("state", state.rawValue)],
                    value: Double(snapshot.hosts.filter { $0.state == state }.count)
                )
            )
        }
        let connectionsHelp =
            "Open line connections by kind: unauthenticated (no credential yet), request (authenticated clients, "
            + "agents' control) and watch (event streams)."
        let kinds = [
            ("unauthenticated", snapshot.unauthenticated),
            ("request", max(0, snapshot.connections - snapshot.watchers - snapshot.unauthenticated)),
            ("watch", snapshot.watchers),
        ]
        for (kind, count) in kinds {
            samples.append(
                GaugeSample(
                    "netlease_connections",
                    help: connectionsHelp,
                    labels: [("kind", kind)],
                    value: Double(count)
                )
            )
        }
        return samples
    }
}

/// A counter registered on first use; afterwards read with one atomic load.
private final class LazyCounter: Sendable {
    let counter = AtomicLazyReference<Counter>()
}
