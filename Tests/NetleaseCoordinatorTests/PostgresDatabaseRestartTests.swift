import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

/// PostgreSQL itself stopped and started again while clients acquire through the list of two coordinators: the
/// coordinators recover on their own (no restart), clients see only errors that say "retry" meanwhile, and every
/// acknowledged lease is there afterwards with its address, none twice.
final class PostgresDatabaseRestartTests: PostgresCoordinatorTestCase {
    func testTheDatabaseRestartedUnderLoadLosesNothingAcknowledgedAndTheCoordinatorsRecover() async throws {
        // A server of this test's own: the shared one must not go away under other tests.
        let database = try PostgresTestServer.start()
        defer { database.stop() }
        let url = database.url(database: try database.makeDatabase(prefix: "r"))
        let first = try await start(makeDirectory(), ["--store", url])
        let secret = try first.secret
        try await waitUntilLeading(first.endpoint, secret: secret)
        let second = try await start(makeDirectory(), ["--store", url])
        let endpoints = [first.endpoint, second.endpoint]
        let claim = try await first.connect { connection in
            _ = try await connection.createNetwork(
                NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/20")!, leaseTTL: 60)
            )
            let joined = try await connection.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1))
            return HostClaim(host: "h1", epoch: joined.epoch)
        }

        let client = LeaderFollowingClient(endpoints: endpoints, secret: secret)
        let perWorker = 200
        let acknowledged = try await withThrowingTaskGroup(of: [String: IPv4Address].self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var acknowledged: [String: IPv4Address] = [:]
                    for index in 0..<perWorker {
                        let owner = "w\(worker)-\(index)"
                        let lease = try await client.acquire(
                            AcquireRequest(network: "prod", owner: owner, claim: claim),
                            deadline: .seconds(60)
                        )
                        acknowledged[owner] = lease.address
                    }
                    return acknowledged
                }
            }
            group.addTask {
                // A clean shutdown (every session ended), then a crash (no checkpoint; recovery at the start),
                // each once clients have been refused meanwhile.
                for (round, mode) in [PostgresTestServer.ShutdownMode.fast, .immediate].enumerated() {
                    try await Self.waitFor("\(100 + round * 300) acknowledgements") {
                        client.acknowledgements >= 100 + round * 300
                    }
                    let refusedBefore = client.errorsSeen.values.reduce(0, +)
                    try database.stopServer(mode: mode)
                    try await Self.waitFor("a client refused while the database is \(mode)-stopped") {
                        client.errorsSeen.values.reduce(0, +) > refusedBefore
                    }
                    try database.startServer()
                    print("database stopped (\(mode)) and started again; clients saw \(client.errorsSeen)")
                }
                return [:]
            }
            var all: [String: IPv4Address] = [:]
            for try await acks in group { all.merge(acks) { a, _ in a } }
            return all
        }
        XCTAssertEqual(acknowledged.count, 4 * perWorker)
        XCTAssertEqual(Set(acknowledged.values).count, acknowledged.count, "an address was acknowledged twice")
        // Only errors that tell a client to retry: the commit failed (storage), the coordinator stopped
        // answering (connection closed), or it stood by.
        let seen = client.errorsSeen
        XCTAssertGreaterThan(seen.values.reduce(0, +), 0)
        XCTAssertTrue(Set(seen.keys).isSubset(of: [.storage, .unavailable, .notLeader]), "\(seen)")

        // Both coordinators still run; one leads and holds exactly what was acknowledged.
        XCTAssertTrue(first.process.isRunning && second.process.isRunning, "a coordinator exited")
        var leader: Endpoint?
        try await Self.waitFor("a leader after the restarts") {
            leader = await NetleaseConnection.leading(among: endpoints, secret: secret)
            return leader != nil
        }
        try await NetleaseConnection.connect(to: leader!, secret: secret) { connection in
            let leases = try await connection.leases(.init(network: "prod")).filter { !$0.isBridge }
            XCTAssertEqual(
                Dictionary(uniqueKeysWithValues: leases.map { ($0.owner, $0.address) }),
                acknowledged,
                "an acknowledged lease was lost or moved, or an unacknowledged one appeared"
            )
            XCTAssertEqual(Set(leases.map(\.address)).count, leases.count, "an address is held twice")
            let hosts = try await connection.hosts()
            XCTAssertEqual(hosts.map(\.state), [.up])
        }
    }

    /// Waits until `condition` holds, checking every 20 ms; fails the test after `limit`.
    private static func waitFor(
        _ what: String,
        within limit: Duration = .seconds(60),
        file: StaticString = #filePath,
        line: UInt = #line,
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + limit
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                XCTFail("\(what): not within \(limit)", file: file, line: line)
                throw NetleaseError(.unavailable, "\(what): not within \(limit)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
