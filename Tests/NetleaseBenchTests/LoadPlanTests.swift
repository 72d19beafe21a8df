import NetleaseCore
import NetleaseTransport
import XCTest

@testable import NetleaseBench

/// The arithmetic of a run's plan: schedule, budget, prefill, names.
final class LoadPlanTests: XCTestCase {
    private static let target = BenchTarget(
        endpoint: Endpoint(host: "127.0.0.1", port: 1),
        secret: nil,
        network: "bench"
    )

    private func plan(connections: Int = 32, intervalNs: UInt64 = 0) -> LoadPlan {
        LoadPlan(
            target: Self.target,
            ownerPrefix: "b-run",
            connections: connections,
            pipeline: 1,
            intervalNs: intervalNs,
            release: false,
            budget: 10,
            duration: 1
        )
    }

    func testTheIntervalOffersTheRateOverAllConnections() {
        XCTAssertEqual(LoadPlan.intervalNs(rate: 0, connections: 32), 0, "no rate: closed loop")
        XCTAssertEqual(LoadPlan.intervalNs(rate: 10_000, connections: 32), 3_200_000, "32 connections at 10k/s")
        XCTAssertEqual(LoadPlan.intervalNs(rate: 1, connections: 1), 1_000_000_000)
        XCTAssertEqual(LoadPlan.intervalNs(rate: 3, connections: 1), 333_333_333, "rounded to the nanosecond")
        XCTAssertEqual(LoadPlan.intervalNs(rate: 1_000_000, connections: 4000), 4_000_000)
    }

    func testOpenLoopSchedulesAreSpreadEvenlyOverOneInterval() {
        let p = plan(connections: 4, intervalNs: 1_000)
        XCTAssertEqual(
            (0..<4).map { p.firstIntendedNs(startNs: 50_000, connection: $0) },
            [50_000, 50_250, 50_500, 50_750]
        )
        XCTAssertEqual(plan(connections: 1, intervalNs: 1_000).firstIntendedNs(startNs: 7, connection: 0), 7)
    }

    func testTheBudgetIsThePoolWithoutReleaseAndUnboundedWithIt() {
        XCTAssertEqual(LoadPlan.budget(release: false, free: 65_000), 65_000)
        XCTAssertEqual(LoadPlan.budget(release: false, free: 0), 0)
        XCTAssertEqual(LoadPlan.budget(release: true, free: 3), Int.max)
    }

    func testThePrefillTopsThePoolUpToThePercentage() {
        XCTAssertEqual(LoadPlan.prefillCount(percent: 0, usable: 1000, free: 1000), 0)
        XCTAssertEqual(LoadPlan.prefillCount(percent: 50, usable: 1000, free: 1000), 500)
        XCTAssertEqual(LoadPlan.prefillCount(percent: 50, usable: 1000, free: 800), 300, "200 are in use already")
        XCTAssertEqual(LoadPlan.prefillCount(percent: 50, usable: 1000, free: 400), 0, "fuller than asked")
        XCTAssertEqual(LoadPlan.prefillCount(percent: 99, usable: 65_534, free: 65_534), 64_879, "rounded up")
        XCTAssertEqual(LoadPlan.prefillCount(percent: 100, usable: 1000, free: 990), 990)
        XCTAssertEqual(LoadPlan.prefillCount(percent: 100, usable: 1000, free: 0), 0)
    }

    func testOwnersAndHostsAreNamedPerRunConnectionAndSequence() {
        let p = plan()
        XCTAssertEqual(p.owner(connection: 3, seq: 17), "b-run-3-17")
        XCTAssertEqual(p.ownerBase(connection: 3), "b-run-3-")
        XCTAssertNotEqual(p.owner(connection: 1, seq: 23), p.owner(connection: 12, seq: 3), "no ambiguity")
        var result = ConnectionResult(index: 5)
        result.held = [(0, 10), (2, 12)]
        result.releaseFailedSeqs = [1]
        XCTAssertEqual(result.heldOwners(p).map(\.0), ["b-run-5-0", "b-run-5-2"])
        XCTAssertEqual(result.heldOwners(p).map(\.1), [10, 12])
        XCTAssertEqual(result.releaseFailedOwners(p), ["b-run-5-1"])

        let agents = AgentPlan(
            target: Self.target,
            hostPrefix: "ba-run",
            agents: 3,
            leasesEach: 2,
            heartbeatNs: 1,
            holdSeconds: 1
        )
        XCTAssertEqual(agents.host(2), "ba-run-2")
        XCTAssertEqual(agents.ownerBase(2), "ba-run-2-")
        XCTAssertEqual(AgentPlan.underlay(0), IPv4Address(100, 64, 0, 1))
        XCTAssertEqual(AgentPlan.underlay(3999), IPv4Address(100, 64, 15, 160))
    }

    func testTheSharedBudgetHandsOutExactlyItsSizeAndRecordsTheFirstExhaustion() {
        let shared = RunShared(budget: 2)
        XCTAssertTrue(shared.take(now: 10))
        XCTAssertTrue(shared.take(now: 11))
        XCTAssertEqual(shared.exhaustedAtNs.load(ordering: .relaxed), 0)
        XCTAssertFalse(shared.take(now: 12))
        XCTAssertFalse(shared.take(now: 13))
        XCTAssertEqual(shared.exhaustedAtNs.load(ordering: .relaxed), 12, "the first refusal is when it ran out")
        XCTAssertEqual(shared.budget.load(ordering: .relaxed), 0, "refusals give their unit back")
        XCTAssertTrue(RunShared(budget: .max).take(now: 1))
    }

    func testTheBudgetHoldsUnderConcurrentTakers() async {
        let shared = RunShared(budget: 1000)
        let taken = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<500).reduce(0) { n, i in n + (shared.take(now: UInt64(i) + 1) ? 1 : 0) } }
            }
            return await group.reduce(0, +)
        }
        XCTAssertEqual(taken, 1000)
    }
}
