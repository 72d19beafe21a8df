import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

/// Handing out addresses: uniqueness under concurrency, idempotent requests, cooldown, reservations and conflict
/// quarantine, exhaustion, and deleting networks, each checked against the SQLite file as well as the answers.
class StoreAllocationTests: StoreTestCase {
    // MARK: uniqueness

    func testConcurrentAcquiresGetDistinctAddressesAndAllAreStored() async throws {
        let store = try await makeStore()
        let spec = try await createNetwork(store, "blue", "10.20.0.0/16")
        let tasks = 32
        let perTask = 100

        let acquired = try await withThrowingTaskGroup(of: [Lease].self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var mine: [Lease] = []
                    for index in 0..<perTask {
                        mine.append(
                            try await store.acquire(
                                network: "blue",
                                owner: "c-\(task)-\(index)",
                                claim: nil,
                                address: nil,
                                ifname: "eth0"
                            )
                        )
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [Lease]()) { $0 += $1 }
        }

        XCTAssertEqual(acquired.count, tasks * perTask)
        XCTAssertEqual(Set(acquired.map(\.address)).count, acquired.count, "every acquire got its own address")
        for lease in acquired {
            XCTAssertTrue(spec.subnet.isHostAddress(lease.address), "\(lease.address) is not a host address")
            XCTAssertEqual(lease.state, .active)
        }
        let statistics = store.statistics()
        XCTAssertEqual(statistics.failedCommits, 0)
        XCTAssertGreaterThanOrEqual(statistics.commits, 1)
        XCTAssertLessThanOrEqual(statistics.commits, statistics.operations)

        store.close()
        let rows = try storedLeases()
        XCTAssertEqual(rows.count, acquired.count)
        XCTAssertEqual(Set(rows.map(\.address)).count, rows.count, "no address is stored twice")
        let stored = Dictionary(uniqueKeysWithValues: rows.map { ($0.owner, $0) })
        for lease in acquired {
            let row = stored[lease.owner]
            XCTAssertEqual(row?.address, lease.address, "acknowledged lease of \(lease.owner) must be stored")
            XCTAssertEqual(row?.state, "active")
            XCTAssertEqual(row?.network, "blue")
        }

        let reopened = try await makeStore()
        let listed = try await reopened.leases(.init(network: "blue"))
        XCTAssertEqual(listed, acquired.sorted { $0.address < $1.address })
        let next = try await acquire(reopened, "blue", "after-restart")
        XCTAssertFalse(Set(acquired.map(\.address)).contains(next.address), "\(next.address) is already leased")
    }

    // MARK: idempotency

    func testSameOwnerGetsTheSameAddressAlsoAfterReopen() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        let first = try await acquire(store, "blue", "web")
        let second = try await acquire(store, "blue", "web")
        XCTAssertEqual(second, first)

        // Retries racing each other still get one lease.
        let racing = try await withThrowingTaskGroup(of: Lease.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try await store.acquire(network: "blue", owner: "api", claim: nil, address: nil, ifname: "eth0")
                }
            }
            return try await group.reduce(into: [Lease]()) { $0.append($1) }
        }
        XCTAssertEqual(Set(racing.map(\.address)).count, 1, "all retries of one owner get one address")
        XCTAssertNotEqual(racing.first?.address, first.address)

        // The same owner asking for a different address is refused, not given a second lease.
        await expectError(.conflict, "second address for one owner") {
            try await acquire(store, "blue", "web", at: ip("10.1.0.200"))
        }

        let reopened = try await restart(store)
        let afterRestart = try await acquire(reopened, "blue", "web")
        XCTAssertEqual(afterRestart, first)
        let racingAfter = try await acquire(reopened, "blue", "api")
        XCTAssertEqual(racingAfter.address, racing.first?.address)
        let active = try await reopened.leases(.init(network: "blue", state: .active))
        XCTAssertEqual(active.map(\.owner), ["web", "api"])

        reopened.close()
        let rows = try storedLeases()
        XCTAssertEqual(rows.map(\.owner), ["web", "api"])
    }

    func testRepeatedReleaseReturnsNilAndChangesNothing() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "blue", "10.1.0.0/24", cooldown: 60)
        let lease = try await acquire(store, "blue", "web")
        _ = try await acquire(store, "blue", "other")

        let released = try await store.release(network: "blue", owner: "web", address: nil, claim: nil)
        XCTAssertEqual(released?.address, lease.address)
        let counts = try await store.network("blue").counts
        XCTAssertEqual(counts.active, 1)
        XCTAssertEqual(counts.cooldown, 1)
        let cooling = try await store.leases(.init(state: .cooldown))

        let byOwner = try await store.release(network: "blue", owner: "web", address: nil, claim: nil)
        XCTAssertNil(byOwner, "a second release by owner finds nothing")
        let byAddress = try await store.release(network: "blue", owner: nil, address: lease.address, claim: nil)
        XCTAssertNil(byAddress, "a release by address of a cooling address finds nothing")
        let countsAfter = try await store.network("blue").counts
        XCTAssertEqual(countsAfter, counts)
        let coolingAfter = try await store.leases(.init(state: .cooldown))
        XCTAssertEqual(coolingAfter, cooling, "the cooldown was neither renewed nor ended")

        let reopened = try await restart(store)
        let afterRestart = try await reopened.release(network: "blue", owner: "web", address: nil, claim: nil)
        XCTAssertNil(afterRestart)
        let coolingRestarted = try await reopened.leases(.init(state: .cooldown))
        XCTAssertEqual(coolingRestarted, cooling)

        reopened.close()
        let rows = try storedLeases()
        XCTAssertEqual(rows.map(\.owner), ["web", "other"])
        XCTAssertEqual(rows.map(\.state), ["cooldown", "active"])
        XCTAssertEqual(rows.first?.until, cooling.first?.until)
    }

    // MARK: cooldown

    func testReleasedAddressWaitsForItsCooldown() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "tiny", "10.7.0.0/29", cooldown: 30)
        var leases: [Lease] = []
        for index in 1...6 { leases.append(try await acquire(store, "tiny", "c\(index)")) }
        XCTAssertEqual(Set(leases.map(\.address)).count, 6)

        let released = try await store.release(network: "tiny", owner: "c3", address: nil, claim: nil)
        let address = try XCTUnwrap(released?.address)
        let cooling = try await store.leases(.init(state: .cooldown))
        XCTAssertEqual(cooling.map(\.address), [address])
        XCTAssertEqual(cooling.first?.until, clock.now() + 30_000)

        // The only candidate is cooling: the pool is exhausted, and says why.
        let exhausted = await expectError(.poolExhausted, "during cooldown") { try await acquire(store, "tiny", "x") }
        assertContains(
            exhausted?.message ?? "",
            ["leased=5", "reserved=0", "conflict=0", "cooldown=1", "free=0"]
        )
        await expectError(.conflict, "asking for the cooling address") {
            try await acquire(store, "tiny", "x", at: address)
        }

        clock.advance(seconds: 29.5)
        await expectError(.poolExhausted, "before the cooldown ends") { try await acquire(store, "tiny", "x") }

        clock.advance(seconds: 0.5)
        let reused = try await acquire(store, "tiny", "x")
        XCTAssertEqual(reused.address, address, "after its cooldown the address is handed out again")
        let stillCooling = try await store.leases(.init(state: .cooldown))
        XCTAssertEqual(stillCooling, [])
    }

    func testCooldownSurvivesRestart() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "tiny", "10.7.0.0/29", cooldown: 30)
        for index in 1...6 { _ = try await acquire(store, "tiny", "c\(index)") }
        let released = try await store.release(network: "tiny", owner: "c1", address: nil, claim: nil)
        let address = try XCTUnwrap(released?.address)

        clock.advance(seconds: 20)
        let restarted = try await restart(store)
        let exhausted = await expectError(.poolExhausted, "cooldown after restart") {
            try await acquire(restarted, "tiny", "x")
        }
        assertContains(exhausted?.message ?? "", ["leased=5", "cooldown=1", "free=0"])

        restarted.close()
        clock.advance(seconds: 11)
        let later = try await makeStore()
        if backend.restartsCooldowns {
            // A new term on a shared database: the cooldown runs its full 30 s again from the takeover, whatever
            // the previous leader's clock said its end was.
            _ = await expectError(.poolExhausted, "a cooldown ended by the previous leader's clock") {
                try await acquire(later, "tiny", "x")
            }
            clock.advance(seconds: 30)
        }
        // On its own file, time the coordinator was down counts for cooldowns: 20 s before + 11 s down > 30 s.
        let reused = try await acquire(later, "tiny", "x")
        XCTAssertEqual(reused.address, address)

        later.close()
        let rows = try storedLeases()
        XCTAssertEqual(rows.filter { $0.address == address }.map(\.owner), ["x"])
        XCTAssertEqual(Set(rows.map(\.state)), ["active"])
    }

    // MARK: never handed out

    func testReservationsAndQuarantinedAddressesAreNeverHandedOut() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "tiny", "10.7.0.0/29")
        let joined = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["tiny"])
        let claim = HostClaim(host: "h1", epoch: joined.host.epoch)
        let bridge = try XCTUnwrap(joined.bridges.first?.address)

        let reserved = try await store.reserve(network: "tiny", address: ip("10.7.0.3"), note: "printer")
        XCTAssertEqual(reserved.state, .reserved)
        XCTAssertEqual(reserved.note, "printer")
        let again = try await store.reserve(network: "tiny", address: ip("10.7.0.3"), note: "printer")
        XCTAssertEqual(again.state, .reserved, "reserving twice is harmless")
        let conflict = try await store.reportConflict(
            network: "tiny",
            address: ip("10.7.0.5"),
            mac: "02:00:00:00:00:05",
            claim: claim
        )
        XCTAssertEqual(conflict.state, .conflict)
        XCTAssertEqual(conflict.mac, "02:00:00:00:00:05")

        var handedOut: [IPv4Address] = []
        for index in 1...3 {
            let lease = try await store.acquire(
                network: "tiny",
                owner: "c\(index)",
                claim: claim,
                address: nil,
                ifname: "eth0"
            )
            handedOut.append(lease.address)
        }
        XCTAssertEqual(Set(handedOut).count, 3)
        for address in [bridge, ip("10.7.0.3"), ip("10.7.0.5")] {
            XCTAssertFalse(handedOut.contains(address), "\(address) must not be handed out")
        }
        let exhausted = await expectError(.poolExhausted, "only reserved and quarantined left") {
            try await acquire(store, "tiny", "c4")
        }
        assertContains(exhausted?.message ?? "", ["leased=4", "reserved=1", "conflict=1", "cooldown=0", "free=0"])
        await expectError(.conflict, "asking for the reserved address") {
            try await acquire(store, "tiny", "c4", at: ip("10.7.0.3"))
        }
        await expectError(.conflict, "asking for the quarantined address") {
            try await acquire(store, "tiny", "c4", at: ip("10.7.0.5"))
        }
        await expectError(.conflict, "reserving a leased address") {
            try await store.reserve(network: "tiny", address: handedOut[0], note: "")
        }

        // Both kinds survive a restart.
        let restarted = try await restart(store)
        let reservedAfter = try await restarted.leases(.init(state: .reserved))
        XCTAssertEqual(reservedAfter.map(\.address), [ip("10.7.0.3")])
        let conflictsAfter = try await restarted.leases(.init(state: .conflict))
        XCTAssertEqual(conflictsAfter.map(\.mac), ["02:00:00:00:00:05"])
        await expectError(.poolExhausted, "after restart") { try await acquire(restarted, "tiny", "c4") }

        // Unreserving gives the address back to the pool; the quarantine stays.
        try await restarted.unreserve(network: "tiny", address: ip("10.7.0.3"))
        let freed = try await acquire(restarted, "tiny", "c4")
        XCTAssertEqual(freed.address, ip("10.7.0.3"))
        await expectError(.notFound, "unreserving twice") {
            try await restarted.unreserve(network: "tiny", address: ip("10.7.0.3"))
        }
        await expectError(.poolExhausted, "quarantine still holds") { try await acquire(restarted, "tiny", "c5") }

        restarted.close()
        let rows = try storedLeases()
        XCTAssertEqual(rows.first { $0.address == ip("10.7.0.3") }?.state, "active")
        XCTAssertEqual(rows.first { $0.address == ip("10.7.0.5") }?.state, "conflict")
    }

    // MARK: exhaustion

    func testExhaustionReportsEveryCount() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "tiny", "10.7.0.0/29", cooldown: 60)
        let joined = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["tiny"])
        let claim = HostClaim(host: "h1", epoch: joined.host.epoch)
        _ = try await store.reserve(network: "tiny", address: ip("10.7.0.6"), note: "")
        _ = try await store.reportConflict(network: "tiny", address: ip("10.7.0.5"), mac: "02:aa", claim: claim)
        _ = try await acquire(store, "tiny", "short-lived")
        _ = try await store.release(network: "tiny", owner: "short-lived", address: nil, claim: nil)
        _ = try await acquire(store, "tiny", "c1")
        _ = try await acquire(store, "tiny", "c2")

        let summary = try await store.network("tiny")
        XCTAssertEqual(
            summary.counts,
            PoolCounts(usable: 6, active: 3, reserved: 1, conflict: 1, cooldown: 1)
        )
        XCTAssertEqual(summary.counts.free, 0)

        let error = await expectError(.poolExhausted, "full /29") { try await acquire(store, "tiny", "c3") }
        assertContains(
            error?.message ?? "",
            ["tiny", "leased=3", "reserved=1", "conflict=1", "cooldown=1", "free=0"]
        )

        // A refused acquire leaves no trace.
        let after = try await store.network("tiny")
        XCTAssertEqual(after.counts, summary.counts)
        store.close()
        XCTAssertEqual(try storedLeases().count, 6)
        XCTAssertFalse(try storedLeases().contains { $0.owner == "c3" })
    }

    func testSmallestNetworkExhaustsAfterItsTwoAddresses() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "pair", "10.8.0.0/30")
        let a = try await acquire(store, "pair", "a")
        let b = try await acquire(store, "pair", "b")
        XCTAssertEqual(Set([a.address, b.address]), [ip("10.8.0.1"), ip("10.8.0.2")])
        let error = await expectError(.poolExhausted, "/30") { try await acquire(store, "pair", "c") }
        assertContains(error?.message ?? "", ["leased=2", "reserved=0", "conflict=0", "cooldown=0", "free=0"])
        await expectError(.badRequest, "broadcast address") {
            try await acquire(store, "pair", "c", at: ip("10.8.0.3"))
        }
        await expectError(.badRequest, "network address") {
            try await acquire(store, "pair", "c", at: ip("10.8.0.0"))
        }
    }

    // MARK: networks

    func testNetworkDeleteIsRefusedWhileContainersHoldLeases() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "temp", "10.50.0.0/24")
        try await createNetwork(store, "keep", "10.51.0.0/24")
        _ = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["temp", "keep"])
        _ = try await acquire(store, "temp", "c1")
        _ = try await acquire(store, "keep", "k1")
        _ = try await store.reserve(network: "temp", address: ip("10.50.0.99"), note: "")

        let refused = await expectError(.conflict, "delete with a container lease") {
            try await store.deleteNetwork("temp")
        }
        assertContains(refused?.message ?? "", ["1 active lease"])
        let stillThere = try await store.networks().map(\.spec.name)
        XCTAssertEqual(stillThere, ["keep", "temp"])

        // Refusal survives restart; after the release and its cooldown (bridge and reservation don't count) it goes.
        let current = try await restart(store)
        await expectError(.conflict, "delete after restart") { try await current.deleteNetwork("temp") }
        _ = try await current.release(network: "temp", owner: "c1", address: nil, claim: nil)
        await expectError(.conflict, "delete while the released address cools") {
            try await current.deleteNetwork("temp")
        }
        clock.advance(seconds: Double(NetworkSpec.defaultCooldown))
        // Still served by h1, whose bridge keeps its address there: refused, naming the host, until h1 joins again
        // without it (its bridge address there then cools down like any other).
        let served = await expectError(.conflict, "delete while h1 serves it") {
            try await current.deleteNetwork("temp")
        }
        assertContains(served?.message ?? "", ["h1 (up)"])
        _ = try await current.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["keep"])
        clock.advance(seconds: Double(NetworkSpec.defaultCooldown))
        try await current.deleteNetwork("temp")

        let names = try await current.networks().map(\.spec.name)
        XCTAssertEqual(names, ["keep"])
        await expectError(.unknownNetwork, "acquire in deleted network") { try await acquire(current, "temp", "c2") }
        await expectError(.unknownNetwork, "delete twice") { try await current.deleteNetwork("temp") }

        current.close()
        XCTAssertEqual(try storedNetworkNames(), ["keep"])
        XCTAssertEqual(Set(try storedLeases().map(\.network)), ["keep"], "the network's records went with it")

        let restarted = try await makeStore()
        let namesAfter = try await restarted.networks().map(\.spec.name)
        XCTAssertEqual(namesAfter, ["keep"])
        let kept = try await restarted.leases(.init(network: "keep")).map(\.owner)
        XCTAssertEqual(kept, ["bridge:h1", "k1"])
        // The name and subnet are free for a new network, which starts empty.
        try await createNetwork(restarted, "temp", "10.50.0.0/24")
        let fresh = try await restarted.network("temp")
        XCTAssertEqual(fresh.counts, PoolCounts(usable: 254))
    }
}
