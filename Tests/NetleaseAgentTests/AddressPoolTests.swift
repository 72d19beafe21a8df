import Foundation
import HostNetwork
import NetleaseAgent
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// The address pool (probed ahead of demand, re-checked and handed over at hand-out, given back at stop) and the
/// watch of the bridge for foreign claims, with the recording host network and the scripted prober.
final class AddressPoolTests: AgentTestCase {
    private func leases(_ filter: Ledger.LeaseFilter) async throws -> [Lease] {
        let coordinator = try XCTUnwrap(self.coordinator)
        return try await withDeadline("listing leases") {
            try await coordinator.connect { try await $0.leases(filter) }
        }
    }

    private func pooled() async throws -> [Lease] {
        try await leases(.init(network: "prod", state: .active)).filter { $0.owner.hasPrefix("pool:h1:") }
    }

    /// Polls `condition` every 20 ms; fails the test after `timeout`.
    private func waitFor(
        _ what: String,
        timeout: Duration = .seconds(20),
        file: StaticString = #filePath,
        line: UInt = #line,
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTFail("\(what): not within \(timeout)", file: file, line: line)
        throw DeadlineExceeded(what: what, timeout: timeout)
    }

    private func attach(_ harness: AgentHarness, _ owner: String) async throws -> IPv4Address {
        let reply = try await harness.local {
            try await $0.send(LocalRequest.attach(network: "prod", owner: owner, netns: "ctr-\(owner)", ifname: "eth0"))
        }
        return try WireCodec.lease(from: reply.fields).address
    }

    func testContainersGetPooledAddressesAfterARecheckAndThePoolRefillsAndIsGivenBack() async throws {
        let harness = try await startAgent(poolSize: 2)
        try await waitFor("a full pool") { try await self.pooled().count == 2 }
        let before = try await pooled()
        XCTAssertTrue(
            harness.prober.probes.allSatisfy { $0.options == ARPProbeOptions() },
            "pool addresses are probed in full"
        )

        let given = try await attach(harness, "web")
        XCTAssertTrue(before.map(\.address).contains(given), "\(given) was not a pooled address")
        // The last probe of that address (the pool refills at once: a later probe may be of a new address).
        let recheck = try XCTUnwrap(harness.prober.probes.last { $0.address == given })
        XCTAssertEqual(recheck.options, .recheck)
        XCTAssertEqual(recheck.ignoring, [webMAC(harness)], "web's own container would not be a conflict")
        let web = try await leases(.init(network: "prod", owner: "web"))
        XCTAssertEqual(web.map(\.address), [given])
        XCTAssertEqual(web.first?.host, "h1")
        let pooledNow = try await pooled().map(\.address)
        XCTAssertFalse(pooledNow.contains(given), "the address is still pooled")

        try await waitFor("the pool refilled") { try await self.pooled().count == 2 }
        await harness.stop()
        let left = try await pooled()
        XCTAssertEqual(left, [], "the pool was not given back at stop")
        let stillWeb = try await leases(.init(network: "prod", owner: "web"))
        XCTAssertEqual(stillWeb.map(\.address), [given], "stopping released a container's lease")
    }

    /// The MAC the agent gives web's container end.
    private func webMAC(_ harness: AgentHarness) -> String {
        guard
            case .attach(let attachment)? = harness.network.recorder.calls.last(where: {
                if case .attach = $0 { return true }
                return false
            })
        else { return "" }
        return attachment.link.containerMAC
    }

    func testPooledAddressesThatAnswerTheirRecheckAreQuarantinedAndAFreshOneIsProbedInFull() async throws {
        let harness = try await startAgent(poolSize: 2)
        try await waitFor("a full pool") { try await self.pooled().count == 2 }
        // Devices came up silently on both pooled addresses after their probes.
        let taken = try await pooled().map(\.address).sorted()
        for address in taken { harness.prober.setAnswer("02:aa:bb:cc:dd:01", for: address) }
        let given = try await attach(harness, "web")
        XCTAssertFalse(taken.contains(given))
        let conflicts = try await leases(.init(network: "prod", state: .conflict))
        XCTAssertEqual(conflicts.map(\.address), taken)
        XCTAssertEqual(Set(conflicts.map(\.mac)), ["02:aa:bb:cc:dd:01"])
        let probe = try XCTUnwrap(harness.prober.probes.last { $0.address == given })
        XCTAssertEqual(probe.options, ARPProbeOptions(), "an address not from the pool is probed in full")
    }

    func testAForeignClaimOnAContainersAddressIsReportedOnceAndDoctorNamesIt() async throws {
        let harness = try await startAgent(poolSize: 0)
        let address = try await attach(harness, "web")
        try await waitFor("the bridge watched") { harness.prober.watchers(of: "nl-prod") == 1 }
        // The container itself claiming its address is no conflict.
        harness.prober.announce(ARPClaim(address: address, mac: webMAC(harness)), on: "nl-prod")
        harness.prober.announce(
            ARPClaim(address: IPv4Address(172, 30, 0, 200), mac: "02:99:00:00:00:01"),
            on: "nl-prod"
        )
        harness.prober.announce(ARPClaim(address: address, mac: "02:99:00:00:00:02"), on: "nl-prod")
        harness.prober.announce(ARPClaim(address: address, mac: "02:99:00:00:00:02"), on: "nl-prod")
        try await waitFor("the conflict reported") {
            try await self.leases(.init(network: "prod", state: .conflict)).map(\.address) == [address]
        }
        let conflict = try await leases(.init(network: "prod", state: .conflict))
        XCTAssertEqual(conflict.first?.mac, "02:99:00:00:00:02")
        let doctor = try await harness.local { try await $0.send(LocalRequest.doctor) }.records
            .map(DoctorCheck.init(fields:))
        let watch = try XCTUnwrap(doctor.first { $0.name == "prod/arp-watch" })
        XCTAssertFalse(watch.ok)
        XCTAssertTrue(watch.detail.contains("\(address)") && watch.detail.contains("02:99:00:00:00:02"), watch.detail)
    }

    /// Docker's IPAM requests take the same path as ATTACH (the plugin calls `Agent.acquire` for owner
    /// `docker/<MAC>`): served from the pool after a re-check that ignores the endpoint's own MAC, one request per
    /// owner at a time; a request for one address (`docker run --ip`) gets exactly that address, from the pool only
    /// when it is pooled; and the bridge watch judges claims on a Docker endpoint's address by the MAC Docker named.
    func testDockerRequestsArePooledSerialisedAndWatchedLikeAttach() async throws {
        let harness = try await startAgent(poolSize: 2)
        try await waitFor("a full pool") { try await self.pooled().count == 2 }
        let pooledBefore = try await pooled().map(\.address)
        let mac = "02:42:ac:1e:00:05"
        let agent = harness.agent
        let racing = try await withThrowingTaskGroup(of: IPv4Address.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await agent.acquire(network: "prod", owner: "docker/\(mac)", ifname: "").lease.address
                }
            }
            return try await group.reduce(into: [IPv4Address]()) { $0.append($1) }
        }
        XCTAssertEqual(Set(racing).count, 1, "two requests of one endpoint got two addresses: \(racing)")
        let given = try XCTUnwrap(racing.first)
        XCTAssertTrue(pooledBefore.contains(given), "\(given) was not a pooled address")
        let recheck = try XCTUnwrap(harness.prober.probes.last { $0.address == given })
        XCTAssertEqual(recheck.options, .recheck)
        XCTAssertEqual(recheck.ignoring, [mac], "the endpoint's own answer would not be a conflict")

        try await waitFor("the pool refilled") { try await self.pooled().count == 2 }
        let pooledNow = try await pooled().map(\.address)
        let wanted = IPv4Address(172, 30, 0, 200)
        XCTAssertFalse(pooledNow.contains(wanted))
        let exact = try await agent.acquire(
            network: "prod",
            owner: "docker/02:42:ac:1e:00:06",
            ifname: "",
            address: wanted
        )
        XCTAssertEqual(exact.lease.address, wanted, "a request for one address got another")
        XCTAssertEqual(harness.prober.probes.last { $0.address == wanted }?.options, ARPProbeOptions())
        let pooledAddress = try XCTUnwrap(pooledNow.first)
        let fromPool = try await agent.acquire(
            network: "prod",
            owner: "docker/02:42:ac:1e:00:07",
            ifname: "",
            address: pooledAddress
        )
        XCTAssertEqual(fromPool.lease.address, pooledAddress)
        XCTAssertEqual(harness.prober.probes.last { $0.address == pooledAddress }?.options, .recheck)

        try await waitFor("the bridge watched") { harness.prober.watchers(of: "nl-prod") == 1 }
        harness.prober.announce(ARPClaim(address: given, mac: mac), on: "nl-prod")
        harness.prober.announce(ARPClaim(address: given, mac: "02:99:00:00:00:03"), on: "nl-prod")
        try await waitFor("the foreign claim reported") {
            try await self.leases(.init(network: "prod", state: .conflict)).map(\.address) == [given]
        }
        let conflict = try await leases(.init(network: "prod", state: .conflict))
        XCTAssertEqual(conflict.first?.mac, "02:99:00:00:00:03", "the endpoint's own MAC was taken for a conflict")
    }

    // MARK: filling: all at once, refilled at once, awaited by requests, ready only once filled

    /// The first fill probes every missing address at once, and the agent reports ready only once it ended: the
    /// local API already serves, but neither `onReady` (the ready line, systemd's READY=1) nor `/readyz` says ready.
    func testReadinessWaitsForThePoolsFirstFillWhichProbesEveryAddressAtOnce() async throws {
        let harness = try AgentHarness(coordinator: coordinator, poolSize: 3)
        harnesses.append(harness)
        harness.prober.hold(ARPProbeOptions())
        harness.start()
        try await waitFor("three full probes at once") { harness.prober.heldCount == 3 }
        _ = try await harness.local { try await $0.send(LocalRequest.ping) }
        let readiness = harness.agent.readiness()
        XCTAssertFalse(readiness.isReady, "ready while the pool's first probes still listen")
        XCTAssertTrue(readiness.unmet.contains { $0.contains("address pool of prod") }, "\(readiness.unmet)")
        XCTAssertEqual(harness.readySignals, 0, "the agent announced readiness before its pool was filled")

        harness.prober.release()
        _ = try await harness.waitUntilReady()
        XCTAssertEqual(harness.agent.poolStatus(of: "prod").pooled, 3, "ready before the pool was full")
        XCTAssertTrue(harness.agent.readiness().isReady)
    }

    /// A pool that cannot fill (every address answers its probe) does not keep the agent from becoming ready.
    func testAnAgentWhosePoolCannotFillBecomesReadyAnyway() async throws {
        let harness = try AgentHarness(coordinator: coordinator, poolSize: 2)
        harnesses.append(harness)
        for host in UInt8(1)...254 { harness.prober.setAnswer("02:aa:bb:cc:dd:02", for: IPv4Address(172, 30, 0, host)) }
        harness.start()
        _ = try await harness.waitUntilReady()
        XCTAssertEqual(harness.agent.poolStatus(of: "prod").pooled, 0)
        let conflicts = try await leases(.init(network: "prod", state: .conflict))
        XCTAssertGreaterThanOrEqual(conflicts.count, 2, "each fill of the first round quarantined what answered")
    }

    /// An address taken from the pool is replaced at once, even while an earlier replacement still probes.
    func testAnAddressTakenFromThePoolIsReplacedAtOnceWhileOtherFillsRun() async throws {
        let harness = try await startAgent(poolSize: 2)
        XCTAssertEqual(harness.agent.poolStatus(of: "prod").pooled, 2)
        harness.prober.hold(ARPProbeOptions())
        _ = try await attach(harness, "web")
        try await waitFor("web's address being replaced") { harness.prober.heldCount == 1 }
        _ = try await attach(harness, "db")
        try await waitFor("db's address replaced while web's replacement still probes") {
            harness.prober.heldCount == 2
        }
        harness.prober.release()
        try await waitFor("the pool full again") { harness.agent.poolStatus(of: "prod").pooled == 2 }
    }

    /// A request that finds the pool empty takes the address whose fill is in flight (its probe started earlier)
    /// instead of leasing and probing one of its own from zero.
    func testARequestThatFindsThePoolEmptyTakesTheFillInFlight() async throws {
        let harness = try await startAgent(poolSize: 1)
        harness.prober.hold(ARPProbeOptions())
        _ = try await attach(harness, "web")
        try await waitFor("web's address being replaced") { harness.prober.heldCount == 1 }
        let refill = try XCTUnwrap(harness.prober.probes.last { $0.options == ARPProbeOptions() }?.address)
        let db = Task {
            let reply = try await harness.local {
                try await $0.send(LocalRequest.attach(network: "prod", owner: "db", netns: "ctr-db", ifname: "eth0"))
            }
            return try WireCodec.lease(from: reply.fields).address
        }
        defer { db.cancel() }
        try await waitFor("db waiting for the fill") { harness.agent.poolStatus(of: "prod").waiting == 1 }
        XCTAssertEqual(harness.prober.heldCount, 1, "db started a full probe of its own")
        harness.prober.release()
        let given = try await withDeadline("db's attach") { try await db.value }
        XCTAssertEqual(given, refill, "db did not get the address being probed for the pool")
        XCTAssertEqual(
            harness.prober.probes.filter { $0.address == refill }.map(\.options),
            [ARPProbeOptions(), .recheck]
        )
    }

    /// On a small subnet the pool holds no more than its share of the free addresses: a quarter of them, divided
    /// among the hosts serving the network; `doctor` states that size and why, and `--pool-size` where it applies.
    func testThePoolTakesNoMoreThanItsShareOfASmallSubnetAndDoctorSaysWhy() async throws {
        let coordinator = try XCTUnwrap(self.coordinator)
        try await withDeadline("creating a small network") {
            try await coordinator.connect { c in
                _ = try await c.createNetwork(NetworkSpec(name: "tiny", subnet: IPv4Subnet("172.31.0.0/28")!))
            }
        }
        let harness = try AgentHarness(coordinator: coordinator, networks: ["tiny", "prod"], poolSize: 8)
        harnesses.append(harness)
        harness.start()
        _ = try await harness.waitUntilReady()
        // 14 usable addresses, one the bridge's: 13 free, a quarter of them is 3.
        XCTAssertEqual(harness.agent.poolStatus(of: "tiny").pooled, 3)
        try await waitFor("prod's full pool") { harness.agent.poolStatus(of: "prod").pooled == 8 }
        let doctor = try await harness.local { try await $0.send(LocalRequest.doctor) }.records
            .map(DoctorCheck.init(fields:))
        let tiny = try XCTUnwrap(doctor.first { $0.name == "tiny/pool" })
        XCTAssertTrue(tiny.ok, tiny.detail)
        XCTAssertEqual(
            tiny.detail,
            "3 of 3 probed address(es) ready (--pool-size 8, capped at 3: the pools of the 1 host(s) serving the "
                + "network hold at most 1/4 of its 13 free address(es))"
        )
        let prod = try XCTUnwrap(doctor.first { $0.name == "prod/pool" })
        XCTAssertEqual(prod.detail, "8 of 8 probed address(es) ready", "a /24 does not cap a pool of 8")
    }
}
