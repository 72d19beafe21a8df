import Logging
import NIOCore
import NetleaseMetrics
import NetleaseTesting
import NetleaseTransport
import Prometheus
import ServiceLifecycle
import Synchronization
import XCTest

final class AtomicHistogramTests: XCTestCase {
    func testBoundsAreInclusiveAndTheSnapshotIsCumulative() {
        let histogram = AtomicHistogram(bounds: [10, 100, 1000])
        for value in [0, 10, 11, 100, 101, 1000, 1001, 5000] { histogram.record(value) }
        let snapshot = histogram.snapshot()
        XCTAssertEqual(snapshot.cumulative, [2, 4, 6], "a value equal to a bound counts in that bucket")
        XCTAssertEqual(snapshot.count, 8, "values past the last bound count only in +Inf")
        XCTAssertEqual(snapshot.sum, 0 + 10 + 11 + 100 + 101 + 1000 + 1001 + 5000)
    }

    func testDurationsAreRecordedInNanoseconds() {
        let histogram = AtomicHistogram(durations: [.microseconds(100), .milliseconds(1)])
        histogram.record(Duration.microseconds(100))
        histogram.record(Duration.microseconds(101))
        histogram.record(Duration.seconds(2))
        XCTAssertEqual(histogram.bounds, [100_000, 1_000_000])
        XCTAssertEqual(histogram.snapshot(), .init(cumulative: [1, 2], count: 3, sum: 2_000_201_000))
    }

    func testConcurrentRecordsLoseNothing() async {
        let histogram = AtomicHistogram(bounds: [1, 2, 3])
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for i in 0..<10_000 { histogram.record((i + task) % 5) }
                }
            }
        }
        let snapshot = histogram.snapshot()
        XCTAssertEqual(snapshot.count, 80_000)
        XCTAssertEqual(snapshot.sum, 8 * 2 * 10_000, "each task records 0…4 equally often: mean 2")
        XCTAssertEqual(snapshot.cumulative, [32_000, 48_000, 64_000])
    }
}

final class PrometheusTextTests: XCTestCase {
    func testAHistogramFamilyIsRenderedWithBucketsSumAndCount() {
        let histogram = AtomicHistogram(durations: [.milliseconds(1), .milliseconds(10)])
        histogram.record(Duration.microseconds(500))
        histogram.record(Duration.milliseconds(20))
        var text = ""
        PrometheusText.appendHistogram(
            "x_seconds",
            help: "Some \\ \"help\".",
            bounds: histogram.bounds,
            scale: 1e9,
            series: [
                ([("verb", "A\"B")], histogram.snapshot()),
                ([("verb", "idle")], AtomicHistogram(bounds: [1]).snapshot()),
            ],
            to: &text
        )
        XCTAssertEqual(
            text,
            """
            # HELP x_seconds Some \\\\ "help".
            # TYPE x_seconds histogram
            x_seconds_bucket{verb="A\\"B",le="0.001"} 1
            x_seconds_bucket{verb="A\\"B",le="0.01"} 1
            x_seconds_bucket{verb="A\\"B",le="+Inf"} 2
            x_seconds_sum{verb="A\\"B"} 0.0205
            x_seconds_count{verb="A\\"B"} 2

            """,
            "a series without observations is left out"
        )
    }

    func testRegistryAndHistogramOutputTogetherPassPromtool() throws {
        let promtool = try requirePromtool()
        let registry = PrometheusCollectorRegistry()
        let gauges = ScrapedGauges(registry: registry)
        gauges.update([GaugeSample("netlease_things", help: "Things.", labels: [("kind", "a")], value: 3)])
        registry.makeCounter(descriptor: .init(metricName: "netlease_events", unitName: "total", helpText: "Events."))
            .increment()
        let histogram = AtomicHistogram(durations: [.milliseconds(1)])
        histogram.record(Duration.microseconds(3))
        var text = registry.emitToString()
        PrometheusText.appendHistogram(
            "netlease_wait_seconds",
            help: "Waits.",
            bounds: histogram.bounds,
            scale: 1e9,
            series: [([], histogram.snapshot())],
            to: &text
        )
        XCTAssertNil(try PrometheusTools.checkMetrics(text, promtool: promtool), text)
        XCTAssertTrue(text.contains("netlease_wait_seconds_sum 3e-06\n"), text)
    }
}

final class ScrapedGaugesTests: XCTestCase {
    func testAnUpdateSetsItsSeriesAndRemovesTheOnesItNoLongerNames() {
        let registry = PrometheusCollectorRegistry()
        let gauges = ScrapedGauges(registry: registry)
        gauges.update([
            GaugeSample("g", help: "G.", labels: [("network", "a")], value: 1),
            GaugeSample("g", help: "G.", labels: [("network", "b")], value: 2),
        ])
        XCTAssertTrue(registry.emitToString().contains(#"g{network="a"} 1.0"#))
        XCTAssertTrue(registry.emitToString().contains(#"g{network="b"} 2.0"#))
        gauges.update([GaugeSample("g", help: "G.", labels: [("network", "b")], value: 5)])
        let text = registry.emitToString()
        XCTAssertFalse(text.contains(#"network="a""#), "a series no longer named disappears: \(text)")
        XCTAssertTrue(text.contains(#"g{network="b"} 5.0"#), text)
        gauges.update([])
        XCTAssertEqual(registry.emitToString(), "", "the family goes with its last series")
    }
}

final class MetricsEndpointTests: XCTestCase {
    func testHealthIsAlwaysOkReadinessNamesWhatIsMissingAndMetricsAreTextFormat() async throws {
        let ready = Mutex(Readiness(unmet: ["store: closed", "coordinator: starting"]))
        var logger = Logger(label: "test.metrics")
        logger.logLevel = .critical
        let (ports, sink) = AsyncStream.makeStream(of: Int.self)
        let server = MetricsEndpoint.server(
            address: .tcp(host: "127.0.0.1", port: 0),
            logger: logger,
            onListening: { sink.yield($0.port ?? 0) },
            metrics: { "# nothing yet\n" },
            readiness: { ready.withLock { $0 } }
        )
        let group = ServiceGroup(services: [server], logger: logger)
        let run = Task { try await group.run() }
        defer { run.cancel() }
        let port = try await withDeadline(.seconds(10), "the endpoint's start") {
            for await port in ports { return port }
            return 0
        }
        let health = try await HTTPProbe.get("/healthz", port: port)
        XCTAssertEqual(health.status, 200)
        let notReady = try await HTTPProbe.get("/readyz", port: port)
        XCTAssertEqual(notReady.status, 503)
        XCTAssertEqual(notReady.body, "not ready: store: closed\nnot ready: coordinator: starting\n")
        ready.withLock { $0 = Readiness() }
        let isReady = try await HTTPProbe.get("/readyz", port: port)
        XCTAssertEqual(isReady.status, 200)
        let metrics = try await HTTPProbe.get("/metrics", port: port)
        XCTAssertEqual(metrics.status, 200)
        XCTAssertEqual(metrics.headers.first(name: "content-type"), PrometheusText.contentType)
        XCTAssertEqual(metrics.body, "# nothing yet\n")
        await group.triggerGracefulShutdown()
        try await withDeadline(.seconds(10), "the endpoint's stop") { try await run.value }
    }
}

/// The path of promtool; skips the test without it, or fails it when NETLEASE_REQUIRE_NETNS=1.
func requirePromtool(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    if let path = PrometheusTools.find("promtool") { return path }
    let message = "promtool not found: install the Debian package '\(PrometheusTools.package)'"
    if PrometheusTools.required {
        XCTFail("NETLEASE_REQUIRE_NETNS=1 but \(message)", file: file, line: line)
        throw XCTSkip(message)
    }
    throw XCTSkip(message)
}
