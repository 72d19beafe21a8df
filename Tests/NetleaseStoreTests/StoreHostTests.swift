import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

/// Hosts: epochs fence stale agents, leases are reclaimed only after a whole TTL without heartbeats, and every
/// host's bridge address is an active lease no container can get.
class StoreHostTests: StoreTestCase {
    func testJoinAndRejoinIncrementTheEpochAndFenceTheOldOne() async throws {
        let store = try await makeStore()
        let spec = try await createNetwork(store, "blue", "10.1.0.0/24", leaseTTL: 10)

        let first = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue"])
        XCTAssertEqual(first.host.epoch, 1)
        XCTAssertEqual(first.host.state, .up)
        XCTAssertEqual(first.host.networks, ["blue"])
        let bridge = try XCTUnwrap(first.bridges.first)
        XCTAssertEqual(first.bridges.count, 1)
        XCTAssertEqual(bridge.owner, "bridge:h1")
        XCTAssertEqual(bridge.owner, Lease.bridgeOwner(host: "h1"))
        XCTAssertEqual(bridge.host, "h1")
        XCTAssertEqual(bridge.state, .active)
        XCTAssertEqual(bridge.ifname, spec.bridge)
        XCTAssertTrue(spec.subnet.isHostAddress(bridge.address))

        let second = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue"])
        XCTAssertEqual(second.host.epoch, 2)
        XCTAssertEqual(second.bridges.map(\.address), [bridge.address], "a rejoin within the TTL keeps the bridge")

        await expectError(.staleEpoch, "heartbeat with epoch 1") { try await store.heartbeat(host: "h1", epoch: 1) }
        await expectError(.staleEpoch, "acquire with epoch 1") {
            try await store.acquire(
                network: "blue",
                owner: "c1",
                claim: HostClaim(host: "h1", epoch: 1),
                address: nil,
                ifname: "e"
            )
        }
        let beat = try await store.heartbeat(host: "h1", epoch: 2)
        XCTAssertEqual(beat.epoch, 2)
        await expectError(.notFound, "heartbeat of an unknown host") {
            try await store.heartbeat(host: "nobody", epoch: 1)
        }

        // The epoch is durable: a restart neither resets nor reuses it.
        let restarted = try await restart(store)
        await expectError(.staleEpoch, "epoch 1 after restart") { try await restarted.heartbeat(host: "h1", epoch: 1) }
        let third = try await restarted.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue"])
        XCTAssertEqual(third.host.epoch, 3)
        restarted.close()
        XCTAssertEqual(try storedHosts(), [StoredHost(name: "h1", epoch: 3, state: "up")])
    }

    func testLeasesAreReclaimedOnlyAfterAWholeTTLWithoutHeartbeats() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "blue", "10.1.0.0/28", leaseTTL: 10, cooldown: 60)

        // An admin pins an address to an owner on h1 before h1 ever joined: a static lease labelled with the host.
        let pinned = try await store.acquire(
            network: "blue",
            owner: "pinned",
            claim: HostClaim(host: "h1"),
            address: ip("10.1.0.9"),
            ifname: ""
        )
        XCTAssertTrue(pinned.isStatic)
        XCTAssertEqual(pinned.host, "h1")

        let joined = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue"])
        let bridge = try XCTUnwrap(joined.bridges.first)
        let claim = HostClaim(host: "h1", epoch: joined.host.epoch)
        let container = try await store.acquire(
            network: "blue",
            owner: "ctr",
            claim: claim,
            address: nil,
            ifname: "eth0"
        )
        XCTAssertFalse(container.isStatic)
        XCTAssertEqual(container.host, "h1")
        let other = try await store.join(host: "h2", underlay: ip("192.168.0.2"), networks: ["blue"])

        // Heartbeats just inside the TTL keep everything.
        for _ in 0..<3 {
            clock.advance(seconds: 9.5)
            _ = try await store.heartbeat(host: "h2", epoch: other.host.epoch)
            let lost = try await store.reclaim()
            XCTAssertEqual(lost, [], "h1 missed heartbeats for less than its TTL")
            _ = try await store.heartbeat(host: "h1", epoch: claim.epoch!)
        }
        let activeBefore = try await store.leases(.init(host: "h1", state: .active)).map(\.owner)
        XCTAssertEqual(Set(activeBefore), ["bridge:h1", "ctr", "pinned"])

        // A host that returns within the TTL keeps every lease.
        clock.advance(seconds: 9.5)
        _ = try await store.heartbeat(host: "h2", epoch: other.host.epoch)
        var lost = try await store.reclaim()
        XCTAssertEqual(lost, [])
        _ = try await store.heartbeat(host: "h1", epoch: claim.epoch!)
        let stillActive = try await store.leases(.init(host: "h1", state: .active))
        XCTAssertEqual(Set(stillActive.map(\.address)), [bridge.address, container.address, pinned.address])

        // Past the TTL without a heartbeat: h1 is lost, its host-bound leases cool down, the static one stays.
        clock.advance(seconds: 9.5)
        _ = try await store.heartbeat(host: "h2", epoch: other.host.epoch)
        clock.advance(seconds: 1)
        _ = try await store.heartbeat(host: "h2", epoch: other.host.epoch)
        lost = try await store.reclaim()
        XCTAssertEqual(lost, ["h1"])
        let hosts = try await store.hosts()
        XCTAssertEqual(hosts.map(\.state), [.lost, .up])
        XCTAssertEqual(hosts.first?.epoch, claim.epoch)
        let cooling = try await store.leases(.init(host: "h1", state: .cooldown))
        XCTAssertEqual(Set(cooling.map(\.address)), [bridge.address, container.address])
        let active = try await store.leases(.init(host: "h1", state: .active))
        XCTAssertEqual(active, [pinned], "a static lease does not expire with its host")
        lost = try await store.reclaim()
        XCTAssertEqual(lost, [], "a lost host is reclaimed once")

        // The lost host's agent is fenced off until it joins again.
        await expectError(.staleEpoch, "heartbeat of a lost host") {
            try await store.heartbeat(host: "h1", epoch: claim.epoch!)
        }
        await expectError(.staleEpoch, "acquire by a lost host") {
            try await store.acquire(network: "blue", owner: "ctr", claim: claim, address: nil, ifname: "eth0")
        }
        await expectError(.staleEpoch, "release by a lost host") {
            try await store.release(network: "blue", owner: "ctr", address: nil, claim: claim)
        }

        // The state is durable; then h1 rejoins with a new epoch. It gets its own cooling bridge address back (its
        // containers' gateway, which nobody took), but never a cooling container address.
        let restarted = try await restart(store)
        let hostsAfter = try await restarted.hosts()
        XCTAssertEqual(hostsAfter, hosts)
        let rejoined = try await restarted.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue"])
        XCTAssertGreaterThan(rejoined.host.epoch, claim.epoch!, "a lost host rejoins with a new epoch")
        XCTAssertEqual(rejoined.host.state, .up)
        let newBridge = try XCTUnwrap(rejoined.bridges.first)
        let newClaim = HostClaim(host: "h1", epoch: rejoined.host.epoch)
        let again = try await restarted.acquire(
            network: "blue",
            owner: "ctr",
            claim: newClaim,
            address: nil,
            ifname: "eth0"
        )
        XCTAssertEqual(newBridge.address, bridge.address, "the returning host's own bridge address comes back")
        XCTAssertEqual(newBridge.state, .active)
        let cooled = Set([bridge.address, container.address])
        XCTAssertFalse(cooled.contains(again.address), "container got cooling \(again.address)")
        XCTAssertNotEqual(again.address, pinned.address)

        restarted.close()
        let rows = try storedLeases()
        let byAddress = Dictionary(uniqueKeysWithValues: rows.map { ($0.address, $0) })
        XCTAssertEqual(byAddress[pinned.address]?.state, "active")
        XCTAssertEqual(byAddress[pinned.address]?.isStatic, true)
        XCTAssertEqual(byAddress[bridge.address]?.state, "active")
        XCTAssertEqual(byAddress[container.address]?.state, "cooldown")
        XCTAssertEqual(byAddress[again.address]?.owner, "ctr")
        XCTAssertEqual(
            try storedHosts(),
            [
                StoredHost(name: "h1", epoch: rejoined.host.epoch, state: "up"),
                StoredHost(name: "h2", epoch: other.host.epoch, state: "up"),
            ]
        )
    }

    func testBridgeAddressIsNeverHandedToAContainer() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "tiny", "10.7.0.0/29")
        let h1 = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["tiny"])
        let h2 = try await store.join(host: "h2", underlay: ip("192.168.0.2"), networks: ["tiny"])
        let h1Bridge = try XCTUnwrap(h1.bridges.first)
        let h2Bridge = try XCTUnwrap(h2.bridges.first)
        let bridges = [h1Bridge.address, h2Bridge.address]
        XCTAssertNotEqual(h1Bridge.address, h2Bridge.address, "each host gets its own bridge address")

        let owners = try await store.leases(.init(network: "tiny", state: .active)).map(\.owner)
        XCTAssertEqual(owners.sorted(), ["bridge:h1", "bridge:h2"])

        await expectError(.badRequest, "a container posing as a bridge owner") {
            try await acquire(store, "tiny", "bridge:h3")
        }
        await expectError(.conflict, "asking for a bridge address") {
            try await acquire(store, "tiny", "sneaky", at: h1Bridge.address)
        }
        var handedOut: [IPv4Address] = []
        for index in 1...4 {
            let host = index.isMultiple(of: 2) ? h1.host : h2.host
            let claim = HostClaim(host: host.name, epoch: host.epoch)
            let lease = try await store.acquire(
                network: "tiny",
                owner: "c\(index)",
                claim: claim,
                address: nil,
                ifname: "eth0"
            )
            handedOut.append(lease.address)
        }
        XCTAssertEqual(Set(handedOut).count, 4)
        XCTAssertTrue(Set(handedOut).isDisjoint(with: bridges), "containers got a bridge address: \(handedOut)")
        let error = await expectError(.poolExhausted, "only bridges left") { try await acquire(store, "tiny", "c5") }
        assertContains(error?.message ?? "", ["leased=6", "free=0"])

        // The bridge is not the container's to release.
        let byOwner = try await store.release(network: "tiny", owner: "c5", address: nil, claim: nil)
        XCTAssertNil(byOwner)
        await expectError(.conflict, "h2 releasing h1's bridge") {
            try await store.release(
                network: "tiny",
                owner: nil,
                address: h1Bridge.address,
                claim: HostClaim(host: "h2", epoch: h2.host.epoch)
            )
        }

        // After a restart the bridges are still taken.
        let restarted = try await restart(store)
        let bridgeLeases = try await restarted.leases(.init(network: "tiny", state: .active))
            .filter(\.isBridge)
        XCTAssertEqual(bridgeLeases, [h1Bridge, h2Bridge])
        await expectError(.poolExhausted, "after restart") { try await acquire(restarted, "tiny", "c5") }
    }

    /// ACQUIRE `from=`: a host's lease taken ahead of demand becomes a container's, same address, durably; nothing
    /// is freed (no cooldown), a retry gets the same lease, and nobody else's lease can be taken this way.
    func testHandOverKeepsTheAddressDurablyAndTakesOnlyTheHostsOwnLease() async throws {
        let store = try await makeStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        let h1 = try await store.join(host: "h1", underlay: ip("192.168.0.1"), networks: ["blue"])
        let h2 = try await store.join(host: "h2", underlay: ip("192.168.0.2"), networks: ["blue"])
        let claim = HostClaim(host: "h1", epoch: h1.host.epoch)
        let pooled = try await store.acquire(network: "blue", owner: "pool:1", claim: claim, address: nil, ifname: "")
        let other = try await store.acquire(network: "blue", owner: "pool:2", claim: claim, address: nil, ifname: "")

        let handOver = { (address: IPv4Address, from: String, owner: String, claim: HostClaim) in
            try await store.handOver(
                network: "blue",
                address: address,
                from: from,
                owner: owner,
                ifname: "eth0",
                claim: claim
            )
        }
        let given = try await handOver(pooled.address, "pool:1", "web", claim)
        XCTAssertEqual(given.address, pooled.address)
        XCTAssertEqual(given.owner, "web")
        XCTAssertEqual(given.host, "h1")
        XCTAssertEqual(given.ifname, "eth0")
        let again = try await handOver(pooled.address, "pool:1", "web", claim)
        XCTAssertEqual(again, given, "a retry after a lost reply gets the same lease")

        await expectError(.conflict, "web holds another address") {
            try await handOver(other.address, "pool:2", "web", claim)
        }
        await expectError(.conflict, "another host's lease") {
            try await handOver(other.address, "pool:2", "db", HostClaim(host: "h2", epoch: h2.host.epoch))
        }
        await expectError(.conflict, "not the named owner's lease") {
            try await handOver(other.address, "pool:1", "db", claim)
        }
        await expectError(.staleEpoch, "an old epoch") {
            try await handOver(other.address, "pool:2", "db", HostClaim(host: "h1", epoch: h1.host.epoch - 1))
        }

        let restarted = try await restart(store)
        let leases = try await restarted.leases(.init(network: "blue", host: "h1")).filter { !$0.isBridge }
        XCTAssertEqual(leases.map(\.owner), ["web", "pool:2"])
        XCTAssertEqual(leases.map(\.address), [pooled.address, other.address])
        XCTAssertEqual(leases.map(\.state), [.active, .active])
        let cooling = try await restarted.leases(.init(network: "blue", state: .cooldown))
        XCTAssertEqual(cooling, [], "a hand-over frees nothing")
        let retried = try await restarted.acquire(network: "blue", owner: "web", claim: claim, address: nil, ifname: "")
        XCTAssertEqual(retried.address, pooled.address)
    }
}
