import Foundation
import XCTest

@testable import NetleaseBench

/// Latency summaries, the measured window, the report's sums and rates, and the /proc readings behind CPU and RSS.
final class BenchReportTests: XCTestCase {
    private static let ms: UInt64 = 1_000_000

    func testPercentilesAreNearestRankOverEverySample() {
        let summary = LatencySummary(nanoseconds: (1...100).reversed().map { UInt64($0) * Self.ms })
        XCTAssertEqual(summary.count, 100)
        XCTAssertEqual(summary.p50, 50)
        XCTAssertEqual(summary.p90, 90)
        XCTAssertEqual(summary.p99, 99)
        XCTAssertEqual(summary.p999, 100)
        XCTAssertEqual(summary.max, 100)
        XCTAssertEqual(summary.mean, 50.5, accuracy: 1e-9)

        let one = LatencySummary(nanoseconds: [1_500_000])
        XCTAssertEqual([one.p50, one.p99, one.p999, one.max, one.mean], [1.5, 1.5, 1.5, 1.5, 1.5])

        let thousand = LatencySummary(nanoseconds: (1...1000).map { UInt64($0) * 1000 })
        XCTAssertEqual(thousand.p999, 0.999, accuracy: 1e-12, "p99.9 of 1000 samples is the 999th")

        let none = LatencySummary(nanoseconds: [])
        XCTAssertEqual([none.p50, none.p99, none.max, none.mean], [0, 0, 0, 0])
        XCTAssertEqual(none.count, 0)
    }

    func testTheWindowIsTheDurationUnlessThePoolRanOutFirst() {
        var a = ConnectionResult(index: 0)
        a.lastReplyNs = 1_400 * Self.ms
        var b = ConnectionResult(index: 1)
        b.lastReplyNs = 1_600 * Self.ms
        let start = 1_000 * Self.ms
        let deadline = 3_000 * Self.ms

        let full = LoadOutcome([a, b], exhaustedAt: 0, startNs: start, deadlineNs: deadline)
        XCTAssertEqual(full.window, 2.0, accuracy: 1e-9)
        XCTAssertFalse(full.budgetExhausted)

        let early = LoadOutcome([a, b], exhaustedAt: 1_500 * Self.ms, startNs: start, deadlineNs: deadline)
        XCTAssertEqual(early.window, 0.6, accuracy: 1e-9, "ends with the last reply after the pool ran out")
        XCTAssertTrue(early.budgetExhausted)

        let late = LoadOutcome([a, b], exhaustedAt: 3_500 * Self.ms, startNs: start, deadlineNs: deadline)
        XCTAssertEqual(late.window, 2.0, accuracy: 1e-9, "running out after the deadline changes nothing")
        XCTAssertFalse(late.budgetExhausted)
    }

    func testTheReportSumsConnectionsAndDerivesRates() throws {
        var a = ConnectionResult(index: 0)
        a.acquireLatencies = [1 * Self.ms, 3 * Self.ms]
        a.acquiresInWindow = 2
        a.errors = ["pool-exhausted": 1]
        var b = ConnectionResult(index: 1)
        b.acquireLatencies = [2 * Self.ms]
        b.releaseLatencies = [5 * Self.ms]
        b.acquiresInWindow = 1
        b.releasesInWindow = 1
        b.errors = ["pool-exhausted": 2, "release:not-found": 1]
        b.sendLags = [Self.ms / 10]
        let outcome = LoadOutcome([a, b], exhaustedAt: 0, startNs: 0, deadlineNs: 2_000 * Self.ms)

        var report = BenchReport(
            mode: "acquire+release",
            client: "lean",
            connections: 2,
            pipeline: 1,
            threads: 1,
            offeredRate: 0,
            durationRequested: 2,
            network: "bench",
            subnet: "10.250.0.0/16",
            prefillPercent: 0,
            prefilled: 0,
            prefillSeconds: 0,
            poolBudget: nil
        )
        report.fill(from: outcome)
        XCTAssertEqual(report.acquires, 3)
        XCTAssertEqual(report.releases, 1)
        XCTAssertEqual(report.acquiresPerSecond, 1.5, accuracy: 1e-9)
        XCTAssertEqual(report.releasesPerSecond, 0.5, accuracy: 1e-9)
        XCTAssertEqual(report.acquireLatencyMs.count, 3)
        XCTAssertEqual(report.acquireLatencyMs.max, 3)
        XCTAssertEqual(report.releaseLatencyMs?.p50, 5)
        XCTAssertEqual(report.sendLagMs?.count, 1)
        XCTAssertEqual(report.errors, ["pool-exhausted": 3, "release:not-found": 1])

        report.clientCPUSeconds = 0.002
        report.coordinatorCPUSeconds = 0.004
        report.computePerOperationCPU()
        XCTAssertEqual(report.clientCPUMicrosPerOperation, 500, accuracy: 1e-6, "2 ms over 4 operations")
        XCTAssertEqual(report.coordinatorCPUMicrosPerOperation ?? 0, 1000, accuracy: 1e-6)

        report.storeOperations = 40
        report.storeCommits = 8
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(try report.jsonText().utf8)) as? [String: Any]
        )
        XCTAssertEqual(json["operationsPerCommit"] as? Double, 5)
        let latency = try XCTUnwrap(json["acquireLatencyMs"] as? [String: Any])
        XCTAssertNotNil(latency["p99_9"], "scripts/bench.sh reads p99_9")
        XCTAssertTrue(report.text().contains("VERIFICATION FAILED"), "nothing verified yet")
        report.verification = Verification(ok: true, acknowledgedHeld: 2, listed: 2, seconds: 0.1, problems: [])
        XCTAssertTrue(report.text().contains("verified: 2 acknowledged lease(s)"))
    }

    func testWithoutSamplesNothingIsDividedByZero() {
        var report = BenchReport(
            mode: "acquire",
            client: "lean",
            connections: 1,
            pipeline: 1,
            threads: 1,
            offeredRate: 0,
            durationRequested: 1,
            network: "bench",
            subnet: "10.250.0.0/16",
            prefillPercent: 0,
            prefilled: 0,
            prefillSeconds: 0,
            poolBudget: 0
        )
        report.fill(from: LoadOutcome([ConnectionResult(index: 0)], exhaustedAt: 0, startNs: 5, deadlineNs: 5))
        report.clientCPUSeconds = 1
        report.computePerOperationCPU()
        XCTAssertEqual(report.acquiresPerSecond, 0)
        XCTAssertNil(report.releaseLatencyMs)
        XCTAssertNil(report.sendLagMs)
        XCTAssertEqual(report.clientCPUMicrosPerOperation, 0)
    }

    func testProcReadingsSurviveOddCommandNames() {
        // A command name with spaces and parentheses; utime 250 and stime 50 ticks are fields 14 and 15.
        let stat = "4242 (net lease) (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 100 0 0"
        XCTAssertEqual(ProcessUsage.cpuTicks(stat: stat), 300)
        XCTAssertNil(ProcessUsage.cpuTicks(stat: "4242 (short) S 1"))
        let status = "Name:\tnetlease\nVmHWM:\t   91234 kB\nVmRSS:\t   70123 kB\nThreads:\t9\n"
        let memory = ProcessUsage.memory(status: status)
        XCTAssertEqual(memory.rss, 70123)
        XCTAssertEqual(memory.hwm, 91234)
        XCTAssertEqual(ProcessUsage.memory(status: "Name:\tx\n").rss, 0)
        XCTAssertNotNil(ProcessUsage.cpuSeconds(of: getpid()), "this process's own /proc entry reads")
    }
}
