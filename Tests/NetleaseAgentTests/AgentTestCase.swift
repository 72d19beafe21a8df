import NetleaseCore
import NetleaseTesting
import XCTest

/// The fixture of the agent suites: a real coordinator on loopback with network `prod` (172.30.0.0/24, no
/// cooldown), and every agent harness a test starts, stopped and removed in tearDown.
class AgentTestCase: XCTestCase {
    var coordinator: CoordinatorHarness!
    var harnesses: [AgentHarness] = []

    override func setUp() async throws {
        coordinator = try await withDeadline("the coordinator's start") { try await CoordinatorHarness.start() }
        let coordinator = try XCTUnwrap(self.coordinator)
        try await withDeadline("creating the network") {
            try await coordinator.connect { c in
                _ = try await c.createNetwork(
                    NetworkSpec(
                        name: "prod",
                        subnet: IPv4Subnet("172.30.0.0/24")!,
                        vni: 77,
                        cooldown: 0
                    )
                )
            }
        }
    }

    /// An agent on this test's coordinator, started and ready (its pool, if any, filled for the first time).
    func startAgent(poolSize: Int = 0) async throws -> AgentHarness {
        let harness = try AgentHarness(coordinator: coordinator, poolSize: poolSize)
        harnesses.append(harness)
        harness.start()
        _ = try await harness.waitUntilReady()
        return harness
    }

    override func tearDown() async throws {
        for harness in harnesses {
            await harness.stop()
            harness.removeFiles()
        }
        harnesses = []
        if let coordinator {
            try await withDeadline("the coordinator's stop") { await coordinator.stop() }
        }
    }
}
