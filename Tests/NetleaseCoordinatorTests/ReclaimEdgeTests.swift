import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// Invariant 7 at its edge, through the real coordinator (TCP, SQLite file, its reclaimer) with the clock moved by
/// hand: a host is declared lost once more than its whole TTL passed without a heartbeat — not a millisecond before
/// (so a reclaim at half or two thirds of the TTL, or one that rounds up, fails) — and at the first pass after.
final class ReclaimEdgeTests: XCTestCase {
    var harness: CoordinatorHarness!
    let clock = ManualLeaseClock()
    /// The test's own reclaim passes come when it calls them: with an interval this long no pass is ever late, so
    /// none is taken for a coordinator stall (which would extend the hosts' deadlines) however slow the machine.
    static let noStall = Duration.seconds(3600)

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    func testAHostIsLostJustAfterItsTTLWithoutHeartbeatsAndNotBefore() async throws {
        // The assembly's own reclaimer runs once at start and then not for an hour: every pass below is the test's.
        harness = try await CoordinatorHarness.start(clock: clock, reclaimInterval: Self.noStall)
        let reclaimer = Reclaimer(store: harness.store, events: harness.events, interval: Self.noStall)
        let ttl: Millis = 9_000
        let (claim, lease) = try await harness.connect { c in
            _ = try await c.createNetwork(
                NetworkSpec(
                    name: "prod",
                    subnet: IPv4Subnet("172.30.0.0/24")!,
                    leaseTTL: Int(ttl / 1000),
                    cooldown: 60
                )
            )
            let join = try await c.join(host: "h1", underlay: IPv4Address(10, 1, 0, 1), networks: ["prod"])
            let claim = HostClaim(host: "h1", epoch: join.epoch)
            return (claim, try await c.acquire(AcquireRequest(network: "prod", owner: "web", claim: claim)))
        }
        // A heartbeat later than the join: the TTL counts from the last heartbeat, not from the join.
        clock.advance(seconds: 5)
        let beat = clock.now()
        _ = try await harness.connect { try await $0.heartbeat(host: "h1", epoch: claim.epoch!) }

        /// The host's state and the state of its container lease after a reclaim pass at `elapsed` ms after the beat.
        func afterPass(at elapsed: Millis) async throws -> (HostState?, LeaseState?) {
            clock.advance(seconds: Double(beat + elapsed - clock.now()) / 1000)
            XCTAssertEqual(clock.now() - beat, elapsed, "the manual clock did not land on the step")
            await reclaimer.reclaimOnce()
            return try await harness.connect { c in
                let host = try await c.hosts().first { $0.name == "h1" }
                var state: LeaseState?
                for candidate in [LeaseState.active, .cooldown] {
                    let leases = try await c.leases(.init(network: "prod", state: candidate))
                    if leases.contains(where: { $0.address == lease.address }) { state = candidate }
                }
                return (host?.state, state)
            }
        }

        // Half, two thirds (and just past), one ms short of, and exactly the TTL: nothing is reclaimed.
        for elapsed in [ttl / 2, ttl * 2 / 3, ttl * 2 / 3 + 1, ttl - 1, ttl] {
            let (host, record) = try await afterPass(at: elapsed)
            XCTAssertEqual(host, .up, "h1 declared lost \(elapsed) ms after its heartbeat (TTL \(ttl) ms)")
            XCTAssertEqual(record, .active, "h1's lease reclaimed \(elapsed) ms after its heartbeat (TTL \(ttl) ms)")
        }
        // One ms past the TTL: lost, its lease cooling down, and the agent's claims fenced.
        let (host, record) = try await afterPass(at: ttl + 1)
        XCTAssertEqual(host, .lost, "h1 not declared lost 1 ms past its TTL")
        XCTAssertEqual(record, .cooldown, "h1's lease not reclaimed 1 ms past its TTL")
        do {
            _ = try await harness.connect { try await $0.heartbeat(host: "h1", epoch: claim.epoch!) }
            XCTFail("a lost host's heartbeat was accepted")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .staleEpoch)
        }
    }

    /// The other side of the edge: a heartbeat just inside the TTL starts a whole new TTL.
    func testAHeartbeatOneMillisecondBeforeTheTTLKeepsTheHostForAnotherWholeTTL() async throws {
        harness = try await CoordinatorHarness.start(clock: clock, reclaimInterval: Self.noStall)
        let reclaimer = Reclaimer(store: harness.store, events: harness.events, interval: Self.noStall)
        let claim = try await harness.connect { c in
            _ = try await c.createNetwork(
                NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, leaseTTL: 3, cooldown: 60)
            )
            let join = try await c.join(host: "h1", underlay: IPv4Address(10, 1, 0, 1), networks: ["prod"])
            return HostClaim(host: "h1", epoch: join.epoch)
        }
        func stateAfterPass() async throws -> HostState? {
            await reclaimer.reclaimOnce()
            return try await harness.connect { try await $0.hosts().first { $0.name == "h1" }?.state }
        }
        for round in 1...3 {
            clock.advance(seconds: 2.999)
            let state = try await stateAfterPass()
            XCTAssertEqual(state, .up, "round \(round): lost 1 ms before its TTL")
            _ = try await harness.connect { try await $0.heartbeat(host: "h1", epoch: claim.epoch!) }
        }
        clock.advance(seconds: 3)
        let atTTL = try await stateAfterPass()
        XCTAssertEqual(atTTL, .up, "lost exactly at its TTL")
        clock.advance(seconds: 0.001)
        let pastTTL = try await stateAfterPass()
        XCTAssertEqual(pastTTL, .lost, "not lost 1 ms past its TTL")
    }
}
