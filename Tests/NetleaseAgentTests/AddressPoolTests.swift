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

    private func startAgent(poolSize: Int) async throws -> AgentHarness {
        let harness = try AgentHarness(coordinator: coordinator, poolSize: poolSize)
        harnesses.append(harness)
        harness.start()
        _ = try await harness.waitUntilReady()
        return harness
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
}
