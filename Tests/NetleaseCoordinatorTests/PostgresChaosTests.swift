import Foundation
import NetleaseChaos
import NetleaseTesting
import XCTest

/// The short form of `netlease-chaos --coordinators 3 --store …`: three real coordinators on one PostgreSQL
/// database, the leader SIGKILLed under load a few times (and started again as a standby); nothing acknowledged is
/// lost or handed out twice, and a standby acknowledges again after every kill.
final class PostgresChaosTests: PostgresCoordinatorTestCase {
    func testChaosWithThreeCoordinatorsLosesNothingAcknowledgedWhenLeadersAreKilled() async throws {
        let url = try makeDatabase()
        let directory = makeDirectory()
        let seed = ReplayableRandom(test: "chaos on PostgreSQL").seed
        print("chaos on PostgreSQL: replay also with netlease-chaos --coordinators 3 --cycles 3 --seed \(seed)")
        let run = ChaosRun(
            options: .init(
                binary: try CoordinatorProcess.binary(),
                directory: directory,
                cycles: 3,
                clients: 6,
                acknowledgementsPerCycle: 100...300,
                seed: seed,
                progressDeadline: .seconds(60),
                coordinators: 3,
                store: url
            )
        )
        let summary = try await run.run()
        print("chaos on PostgreSQL: \(summary)")
        XCTAssertEqual(summary.cycles, 3)
        XCTAssertEqual(summary.outages.count, 3, "a kill was not followed by an acknowledgement")
        XCTAssertGreaterThan(summary.acknowledged, 300)
        XCTAssertTrue(summary.ok, "\(summary) \(summary.problems.prefix(5))")
        XCTAssertTrue(summary.description.contains(" leader-kills=3 "), summary.description)
    }
}
