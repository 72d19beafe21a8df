import HostNetwork
import NetleaseCore
import NetleaseMetrics
import Prometheus
import Synchronization

/// An agent's metrics (names and labels are a contract: docs/OPERATIONS.md, "Metrics"). One registry per agent,
/// nothing bootstrapped globally. Hand-outs and ARP probes are counted where they happen (a few per container
/// start, so swift-prometheus's locked histogram is fine here); peers and the coordinator session are read from
/// the agent's state at scrape time.
public final class AgentMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    static let attachDurationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    /// Computed: swift-prometheus's descriptor is not `Sendable`, so it cannot be a stored static.
    static var attaches: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "netlease_agent_attaches",
            unitName: "total",
            helpText: "Addresses asked for by local consumers (ACQUIRE, ATTACH), by result: ok or the error code."
        )
    }

    /// Computed for the same reason as `attaches`.
    static var repairs: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "netlease_agent_repairs",
            unitName: "total",
            helpText: "Host network drift repaired by the periodic resync, by network and kind (the check that failed)."
        )
    }

    private let attachDuration: DurationHistogram
    private let probes: [ARPProbeResult: Counter]
    private let gauges: ScrapedGauges
    /// One scrape at a time: setting the gauges and emitting them belong together.
    private let scraping = Mutex(())

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        attachDuration = registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "netlease_agent_attach_duration",
                unitName: "seconds",
                helpText: "Time to hand out an address: coordinator lease, ARP probes, plumbing."
            ),
            buckets: Self.attachDurationBuckets
        )
        var probes: [ARPProbeResult: Counter] = [:]
        for result in ARPProbeResult.allCases {
            probes[result] = registry.makeCounter(
                descriptor: .init(
                    metricName: "netlease_agent_arp_probes",
                    unitName: "total",
                    helpText: "ARP probes before a hand-out, by result: free, answered (in use), error."
                ),
                labels: [("result", result.rawValue)]
            )
        }
        self.probes = probes
        gauges = ScrapedGauges(registry: registry)
        // The success series exists from the start, so a rate over it is defined before the first container.
        _ = registry.makeCounter(descriptor: Self.attaches, labels: [("result", "ok")])
    }

    /// Counts one hand-out to a local consumer and records how long it took.
    func attachEnded(error: (any Error)?, duration: Duration) {
        let result = error.map { (($0 as? NetleaseError)?.code ?? .internalError).rawValue } ?? "ok"
        registry.makeCounter(descriptor: Self.attaches, labels: [("result", result)]).increment()
        attachDuration.record(duration)
    }

    func probed(_ result: ARPProbeResult) { probes[result]?.increment() }

    /// Counts one repaired kind of drift of a network (`VerifyCheck` names, e.g. `bridge-mtu`, `tunnel-fdb`).
    func repaired(network: String, kind: String) {
        registry.makeCounter(descriptor: Self.repairs, labels: [("network", network), ("kind", kind)]).increment()
    }

    /// The scrape answer, with the gauges set from the agent's state.
    func exposition(peers: [(network: String, count: Int)], connected: Bool) -> String {
        scraping.withLock { _ in
            var samples = peers.map {
                GaugeSample(
                    "netlease_agent_peers",
                    help: "Other up hosts this host's tunnel mesh reaches, by network.",
                    labels: [("network", $0.network)],
                    value: Double($0.count)
                )
            }
            samples.append(
                GaugeSample(
                    "netlease_agent_coordinator_connected",
                    help: "1 while the agent holds a live coordinator session (joined, networks verified), else 0.",
                    value: connected ? 1 : 0
                )
            )
            gauges.update(samples)
            return registry.emitToString()
        }
    }
}

/// What an ARP probe found.
enum ARPProbeResult: String, CaseIterable, Sendable {
    /// Nothing answered: the address may be handed out.
    case free
    /// Something answered: the address is in use outside netlease.
    case answered
    /// The probe itself failed.
    case error
}

/// Counts every probe of the prober it wraps.
struct CountingARPProber: ARPProber {
    let base: any ARPProber
    let metrics: AgentMetrics

    func probe(
        _ address: IPv4Address,
        on interface: String,
        options: ARPProbeOptions,
        ignoring: Set<String>
    ) async throws -> String? {
        do {
            let mac = try await base.probe(address, on: interface, options: options, ignoring: ignoring)
            metrics.probed(mac == nil ? .free : .answered)
            return mac
        } catch {
            metrics.probed(.error)
            throw error
        }
    }

    /// The bridge watch is not a probe: passed through uncounted.
    func watch(_ interface: String) -> AsyncThrowingStream<ARPClaim, any Error> { base.watch(interface) }
}
