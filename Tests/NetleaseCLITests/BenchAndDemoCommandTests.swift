import ArgumentParser
import NetleaseBench
import XCTest

@testable import netlease

/// `netlease bench` (its options reach the load generator one to one) and `netlease demo`.
final class BenchAndDemoCommandTests: XCTestCase {
    func testBenchDefaultsAreTheLoadGeneratorsDefaults() throws {
        let command = try parse(["bench"], as: Netlease.Bench.self)
        let options = command.options
        let defaults = BenchOptions.defaults
        XCTAssertEqual(options.connections, defaults.connections)
        XCTAssertEqual(options.pipeline, defaults.pipeline)
        XCTAssertEqual(options.duration, defaults.duration)
        XCTAssertEqual(options.rate, defaults.rate)
        XCTAssertEqual(options.network, defaults.network)
        XCTAssertEqual(options.subnet, defaults.subnet)
        XCTAssertEqual(options.prefill, defaults.prefill)
        XCTAssertEqual(options.release, defaults.release)
        XCTAssertEqual(options.clientKind, defaults.clientKind)
        XCTAssertEqual(options.threads, defaults.threads)
        XCTAssertEqual(options.keep, defaults.keep)
        XCTAssertEqual(options.agents, defaults.agents)
        XCTAssertEqual(options.agentLeases, defaults.agentLeases)
        XCTAssertEqual(options.heartbeat, defaults.heartbeat)
        XCTAssertEqual(options.agentStartPeers, defaults.agentStartPeers)
        XCTAssertEqual(options.runs, defaults.runs)
        XCTAssertEqual(options.coordinatorPid, defaults.coordinatorPid)
        XCTAssertEqual(options.json, defaults.json)
    }

    func testEveryBenchOptionReachesTheLoadGenerator() throws {
        let options = try parse(
            [
                "bench", "--connections", "7", "--pipeline", "3", "--duration", "2.5", "--rate", "1000",
                "--network", "load", "--subnet", "10.99.0.0/20", "--prefill", "50", "--release",
                "--client-kind", "standard", "--threads", "4", "--keep", "--agents", "12", "--agent-leases", "5",
                "--heartbeat", "0.5", "--agent-start-peers", "100", "--runs", "9", "--coordinator-pid", "4242",
                "--json",
            ],
            as: Netlease.Bench.self
        ).options
        XCTAssertEqual(options.connections, 7)
        XCTAssertEqual(options.pipeline, 3)
        XCTAssertEqual(options.duration, 2.5)
        XCTAssertEqual(options.rate, 1000)
        XCTAssertEqual(options.network, "load")
        XCTAssertEqual(options.subnet, "10.99.0.0/20")
        XCTAssertEqual(options.prefill, 50)
        XCTAssertTrue(options.release)
        XCTAssertEqual(options.clientKind, "standard")
        XCTAssertEqual(options.threads, 4)
        XCTAssertTrue(options.keep)
        XCTAssertEqual(options.agents, 12)
        XCTAssertEqual(options.agentLeases, 5)
        XCTAssertEqual(options.heartbeat, 0.5)
        XCTAssertEqual(options.agentStartPeers, 100)
        XCTAssertEqual(options.runs, 9)
        XCTAssertEqual(options.coordinatorPid, 4242)
        XCTAssertTrue(options.json)
    }

    func testBenchRefusesValuesOutOfRange() {
        assertRefused(["bench", "--connections", "0"], "--connections must be 1-4000")
        assertRefused(["bench", "--connections", "4001"], "--connections must be 1-4000")
        assertRefused(["bench", "--pipeline", "0"], "--pipeline must be 1-1024")
        assertRefused(["bench", "--duration", "0"], "--duration must be in (0, 3600]")
        assertRefused(["bench", "--duration", "3601"], "--duration must be in (0, 3600]")
        assertRefused(["bench", "--rate=-1"], "--rate must be 0-1000000")
        assertRefused(["bench", "--prefill", "101"], "--prefill must be 0-100")
        assertRefused(["bench", "--client-kind", "fast"], "--client-kind must be lean or standard")
        assertRefused(["bench", "--threads", "0"], "--threads must be 1-16")
        assertRefused(["bench", "--agents", "4001"], "--agents must be 0-4000")
        assertRefused(["bench", "--agent-leases", "1001"], "--agent-leases must be 0-1000")
        assertRefused(["bench", "--heartbeat", "0.05"], "--heartbeat must be at least 0.1")
        assertRefused(["bench", "--agent-start-peers", "1001"], "--agent-start-peers must be 0-1000")
        assertRefused(["bench", "--runs", "0"], "--runs must be 1-100")
        assertRefused(["bench", "--subnet", "10.99.0.0"], "--subnet '10.99.0.0' is not A.B.C.D/P")
    }

    func testDemo() throws {
        let defaults = try parse(["demo"], as: Netlease.Demo.self)
        XCTAssertEqual(defaults.hosts, 2)
        XCTAssertEqual(defaults.containers, 2)
        XCTAssertFalse(defaults.keep)
        let command = try parse(["demo", "--hosts", "16", "--containers", "1", "--keep"], as: Netlease.Demo.self)
        XCTAssertEqual(command.hosts, 16)
        XCTAssertEqual(command.containers, 1)
        XCTAssertTrue(command.keep)

        assertRefused(["demo", "--hosts", "1"], "--hosts must be between 2 and 16")
        assertRefused(["demo", "--hosts", "17"], "--hosts must be between 2 and 16")
        assertRefused(["demo", "--containers", "0"], "--containers must be between 1 and 16")
        assertRefused(["demo", "--containers", "17"], "--containers must be between 1 and 16")
    }
}
