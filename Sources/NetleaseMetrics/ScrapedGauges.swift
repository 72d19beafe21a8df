import Prometheus
import Synchronization

/// One value of a gauge computed at scrape time.
public struct GaugeSample: Sendable {
    public var name: String
    public var help: String
    public var labels: [(String, String)]
    public var value: Double

    public init(_ name: String, help: String, labels: [(String, String)] = [], value: Double) {
        self.name = name
        self.help = help
        self.labels = labels
        self.value = value
    }
}

/// Gauges whose values are derived from state when scraped (pool counts, hosts, peers), kept in a registry: each
/// update sets the series it is given and removes the ones it is no longer given, so a deleted network's series
/// disappear instead of freezing at their last value.
public final class ScrapedGauges: Sendable {
    private struct Key: Hashable {
        var name: String
        var labels: [String]
    }

    private let registry: PrometheusCollectorRegistry
    private let gauges = Mutex<[Key: Gauge]>([:])

    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    /// Sets every sample's series and unregisters the series of the last update that `samples` does not name.
    public func update(_ samples: [GaugeSample]) {
        gauges.withLock { gauges in
            var current: [Key: Gauge] = [:]
            for sample in samples {
                let key = Key(name: sample.name, labels: sample.labels.flatMap { [$0.0, $0.1] })
                let gauge =
                    gauges[key]
                    ?? registry.makeGauge(
                        descriptor: MetricNameDescriptor(metricName: sample.name, unitName: "", helpText: sample.help),
                        labels: sample.labels
                    )
                gauge.set(to: sample.value)
                current[key] = gauge
            }
            for (key, gauge) in gauges where current[key] == nil { registry.unregisterGauge(gauge) }
            gauges = current
        }
    }
}
