import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

final class WatchAndReconcileTests: XCTestCase {
    var harness: CoordinatorHarness!
    let clock = ManualLeaseClock()

    override func setUp() async throws {
        harness = try await CoordinatorHarness.start(clock: clock)
        try await harness.connect { connection in
            _ = try await connection.createNetwork(
                NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, leaseTTL: 30, cooldown: 60)
            )
        }
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    func testWatcherGetsSnapshotThenEveryHostAndNetworkChange() async throws {
        _ = try await harness.connect { try await $0.join(host: "h1", underlay: IPv4Address(10, 1, 0, 1)) }
        try await harness.connect { watcher in
            let (hosts, events) = try await watcher.watch()
            XCTAssertEqual(hosts.map(\.name), ["h1"])
            var iterator = events.makeAsyncIterator()

            _ = try await harness.connect { try await $0.join(host: "h2", underlay: IPv4Address(10, 1, 0, 2)) }
            guard case .host(let joined)? = await iterator.next() else { return XCTFail("expected a host event") }
            XCTAssertEqual(joined.name, "h2")
            XCTAssertEqual(joined.state, .up)

            _ = try await harness.connect {
                try await $0.createNetwork(NetworkSpec(name: "dev", subnet: IPv4Subnet("172.31.0.0/24")!))
            }
            guard case .network(let network)? = await iterator.next() else {
                return XCTFail("expected a network event")
            }
            XCTAssertEqual(network.name, "dev")

            // h2 heartbeats inside its TTL, h1 never: only h1 may be lost, whenever the harness's own reclaimer runs.
            clock.advance(seconds: 20)
            _ = try await harness.connect { try await $0.heartbeat(host: "h2", epoch: joined.epoch) }
            clock.advance(seconds: 11)
            await Reclaimer(store: harness.store, events: harness.events).reclaimOnce()
            guard case .host(let lost)? = await iterator.next() else { return XCTFail("expected a host event") }
            XCTAssertEqual(lost.name, "h1")
            XCTAssertEqual(lost.state, .lost)

            _ = try await harness.connect { try await $0.removeHost("h2") }
            guard case .hostRemoved(let removed)? = await iterator.next() else {
                return XCTFail("expected host-removed")
            }
            XCTAssertEqual(removed, "h2")
        }
    }

    func testReconcileAgreesAdoptsAndReportsDisagreementsWithoutOverwriting() async throws {
        try await harness.connect { c in
            let join = try await c.join(host: "h1", underlay: IPv4Address(10, 1, 0, 1))
            let claim = HostClaim(host: "h1", epoch: join.epoch)
            let mine = try await c.acquire(AcquireRequest(network: "prod", owner: "web", claim: claim))
            let other = try await c.acquire(AcquireRequest(network: "prod", owner: "db"))

            let held = try await c.reconcile(
                ReconcileRequest(
                    network: "prod",
                    owner: "web",
                    address: mine.address,
                    claim: claim
                )
            )
            XCTAssertEqual(held.status, .held)

            let free = IPv4Address(172, 30, 0, 200)
            let adopted = try await c.reconcile(
                ReconcileRequest(
                    network: "prod",
                    owner: "cache",
                    address: free,
                    claim: claim
                )
            )
            XCTAssertEqual(adopted.status, .adopted)
            XCTAssertEqual(adopted.lease.owner, "cache")

            let taken = try await c.reconcile(
                ReconcileRequest(
                    network: "prod",
                    owner: "intruder",
                    address: other.address,
                    claim: claim
                )
            )
            XCTAssertEqual(taken.status, .taken)
            XCTAssertEqual(taken.lease.owner, "db", "the holder must be reported, not replaced")

            let moved = try await c.reconcile(
                ReconcileRequest(
                    network: "prod",
                    owner: "web",
                    address: IPv4Address(172, 30, 0, 201),
                    claim: claim
                )
            )
            XCTAssertEqual(moved.status, .moved)
            XCTAssertEqual(moved.lease.address, mine.address)

            let leases = try await c.leases(.init(network: "prod"))
            XCTAssertEqual(leases.first { $0.address == other.address }?.owner, "db")
            XCTAssertNil(leases.first { $0.owner == "intruder" })
            XCTAssertNil(leases.first { $0.address == IPv4Address(172, 30, 0, 201) })

            _ = try await c.join(host: "h1", underlay: IPv4Address(10, 1, 0, 1))
            do {
                _ = try await c.reconcile(
                    ReconcileRequest(
                        network: "prod",
                        owner: "web",
                        address: mine.address,
                        claim: claim
                    )
                )
                XCTFail("a stale epoch reconciled")
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .staleEpoch)
            }
        }
    }
}
