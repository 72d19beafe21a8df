import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

/// The reclaimer runs concurrently with allocations for the same pool. A live host (heartbeating within its TTL)
/// never loses a lease; a host that stops heartbeating is fenced: once reclaimed, nothing of it is active and no
/// allocation for it slips in afterwards.
class StoreReclaimRaceTests: StoreTestCase {
    func testReclaimingConcurrentlyWithAcquiresNeverReclaimsALiveLease() async throws {
        let store = try await makeStore()
        _ = try await store.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/20")!, leaseTTL: 3))
        let live = try await store.join(host: "live", underlay: IPv4Address(10, 0, 0, 1), networks: ["prod"])
        let dying = try await store.join(host: "dying", underlay: IPv4Address(10, 0, 0, 2), networks: ["prod"])
        let liveClaim = HostClaim(host: "live", epoch: live.host.epoch)
        let dyingClaim = HostClaim(host: "dying", epoch: dying.host.epoch)
        let clock = self.clock!

        let outcome = try await withThrowingTaskGroup(of: (kept: [String], dyingAcked: Int).self) { group in
            // The live host's allocations and releases.
            group.addTask {
                var kept: [String] = []
                for index in 0..<1000 {
                    let owner = "live-\(index)"
                    _ = try await store.acquire(
                        network: "prod",
                        owner: owner,
                        claim: liveClaim,
                        address: nil,
                        ifname: ""
                    )
                    if index % 4 == 3 {
                        _ = try await store.release(network: "prod", owner: owner, address: nil, claim: liveClaim)
                    } else {
                        kept.append(owner)
                    }
                }
                return (kept, 0)
            }
            // The dying host keeps allocating until it is fenced off.
            group.addTask {
                var acked = 0
                for index in 0..<1000 {
                    do {
                        _ = try await store.acquire(
                            network: "prod",
                            owner: "dying-\(index)",
                            claim: dyingClaim,
                            address: nil,
                            ifname: ""
                        )
                        acked += 1
                    } catch let error as NetleaseError where error.code == .staleEpoch {
                        break
                    }
                }
                return ([], acked)
            }
            // Time moves, the live host heartbeats within its TTL, the reclaimer runs all along.
            group.addTask {
                for _ in 0..<300 {
                    clock.advance(seconds: 0.5)
                    _ = try await store.heartbeat(host: "live", epoch: liveClaim.epoch!)
                    _ = try await store.reclaim()
                }
                return ([], 0)
            }
            for _ in 0..<2 {
                group.addTask {
                    for _ in 0..<500 { _ = try await store.reclaim() }
                    return ([], 0)
                }
            }
            var kept: [String] = []
            var dyingAcked = 0
            for try await result in group {
                kept += result.kept
                dyingAcked += result.dyingAcked
            }
            return (kept: kept, dyingAcked: dyingAcked)
        }

        let hosts = try await store.hosts()
        XCTAssertEqual(hosts.first { $0.name == "live" }?.state, .up, "a heartbeating host was declared lost")
        XCTAssertEqual(hosts.first { $0.name == "dying" }?.state, .lost, "a silent host outlived its TTL")
        let active = try await store.leases(.init(network: "prod", state: .active))
        let liveActive = Set(active.filter { $0.host == "live" && !$0.isBridge }.map(\.owner))
        XCTAssertEqual(liveActive, Set(outcome.kept), "a live lease was reclaimed (or a released one survived)")
        XCTAssertEqual(active.filter { $0.host == "dying" }, [], "the fenced host still holds active leases")
        let cooling = try await store.leases(.init(network: "prod", state: .cooldown))
        XCTAssertTrue(cooling.filter { $0.host == "live" }.allSatisfy { !liveActive.contains($0.owner) })
        XCTAssertEqual(Set(active.map(\.address)).count, active.count)
        print(
            "reclaim race: live kept \(outcome.kept.count), dying acknowledged \(outcome.dyingAcked) before it was fenced"
        )
    }
}
