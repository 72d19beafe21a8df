import Foundation
import HostNetwork
import NetleaseAgent
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

final class AgentTests: AgentTestCase {
    /// One exchange with the coordinator on an admin connection; fails the test when it takes too long.
    private func admin<T: Sendable>(
        _ what: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: @escaping @Sendable (NetleaseConnection) async throws -> T
    ) async throws -> T {
        let coordinator = try XCTUnwrap(self.coordinator)
        return try await withDeadline(what, file: file, line: line) { try await coordinator.connect(body) }
    }

    /// The peers of the next network setup the agent makes.
    private func nextEnsuredPeers(
        _ harness: AgentHarness,
        file: StaticString = #filePath,
        line: UInt = #line
    )
        async throws -> [String: IPv4Address]
    {
        try await harness.network.nextCall("a network setup", file: file, line: line) { call in
            if case .ensureNetwork(let config) = call { return config.peers }
            return nil
        }
    }

    private func makeAgent(
        host: String = "h1",
        underlay: IPv4Address = IPv4Address(10, 9, 0, 1),
        directory: URL? = nil,
        via: Endpoint? = nil
    ) throws -> AgentHarness {
        let harness = try AgentHarness(
            coordinator: coordinator,
            host: host,
            underlay: underlay,
            directory: directory,
            via: via
        )
        harnesses.append(harness)
        return harness
    }

    func testLocalAPIOpensOnlyAfterTheNetworkIsVerified() async throws {
        let harness = try makeAgent()
        harness.network.recorder.setVerifyFailures([VerifyFailure(check: .bridgeUp, detail: "bridge is down")])
        harness.start()
        // The agent keeps retrying the network setup, and the socket stays closed meanwhile.
        for attempt in 1...3 {
            try await harness.network.nextCall("verification \(attempt)") { call -> Void? in
                if case .verify = call { return () }
                return nil
            }
            XCTAssertFalse(
                FileManager.default.fileExists(atPath: harness.socketPath),
                "local API socket exists while the network fails verification"
            )
        }
        harness.network.recorder.setVerifyFailures([])
        let path = try await harness.waitUntilReady()
        XCTAssertEqual(path, harness.socketPath)
        XCTAssertTrue(FileManager.default.fileExists(atPath: harness.socketPath))
        // Every setup attempt configured before it verified, and nothing else touched the host.
        let recorded = harness.network.recorder.calls
        guard case .ensureNetwork(let config)? = recorded.first else {
            return XCTFail("first call was not ensureNetwork")
        }
        XCTAssertEqual(config.bridge, "nl-prod")
        XCTAssertEqual(config.vni, 77)
        XCTAssertEqual(config.underlay, IPv4Address(10, 9, 0, 1))
        XCTAssertEqual(config.peers, [:])
        let bridges = try await admin("listing bridges") {
            try await $0.leases(.init(network: "prod", owner: "bridge:h1"))
        }
        XCTAssertEqual(bridges.map(\.address), [config.bridgeAddress])
    }

    func testMeshFollowsHostsJoiningMovingAndLeaving() async throws {
        let harness = try makeAgent()
        harness.start()
        _ = try await harness.waitUntilReady()

        let initial = try await nextEnsuredPeers(harness)
        XCTAssertEqual(initial, [:], "the first setup had no peers")
        _ = try await admin("h2 joins") { try await $0.join(host: "h2", underlay: IPv4Address(10, 9, 0, 2)) }
        let joined = try await nextEnsuredPeers(harness)
        XCTAssertEqual(joined, ["h2": IPv4Address(10, 9, 0, 2)])
        _ = try await admin("h2 moves") { try await $0.join(host: "h2", underlay: IPv4Address(10, 9, 0, 22)) }
        let moved = try await nextEnsuredPeers(harness)
        XCTAssertEqual(moved, ["h2": IPv4Address(10, 9, 0, 22)])
        _ = try await admin("h2 is removed") { try await $0.removeHost("h2") }
        let left = try await nextEnsuredPeers(harness)
        XCTAssertEqual(left, [:])
    }

    func testProbeThenLeaseQuarantinesAnAnsweringAddressAndHandsOutAnother() async throws {
        let harness = try makeAgent()
        harness.start()
        _ = try await harness.waitUntilReady()
        // The bridge took the first address; the next two answer ARP.
        let busy1 = IPv4Address(172, 30, 0, 2)
        let busy2 = IPv4Address(172, 30, 0, 3)
        harness.prober.setAnswer("02:aa:bb:cc:dd:01", for: busy1)
        harness.prober.setAnswer("02:aa:bb:cc:dd:02", for: busy2)
        let reply = try await harness.local {
            try await $0.send(LocalRequest.acquire(network: "prod", owner: "c1", ifname: "eth0"))
        }
        let lease = try WireCodec.lease(from: reply.fields)
        XCTAssertEqual(lease.address, IPv4Address(172, 30, 0, 4))
        XCTAssertEqual(harness.prober.probes.map(\.address), [busy1, busy2, lease.address])
        XCTAssertEqual(Set(harness.prober.probes.map(\.interface)), ["nl-prod"])
        let conflicts = try await admin("listing conflicts") {
            try await $0.leases(.init(network: "prod", state: .conflict))
        }
        XCTAssertEqual(conflicts.map(\.address), [busy1, busy2])
        XCTAssertEqual(conflicts.map(\.mac), ["02:aa:bb:cc:dd:01", "02:aa:bb:cc:dd:02"])
        XCTAssertEqual(reply.fields["gateway"], "172.30.0.1")

        // A repeat for the same owner returns the same address without probing its own container.
        let again = try await harness.local {
            try await $0.send(LocalRequest.acquire(network: "prod", owner: "c1", ifname: "eth0"))
        }
        XCTAssertEqual(try WireCodec.lease(from: again.fields).address, lease.address)
        XCTAssertEqual(harness.prober.probes.count, 3)
    }

    func testAttachPlumbsTheContainerAndDetachReleases() async throws {
        let harness = try makeAgent()
        harness.start()
        _ = try await harness.waitUntilReady()
        let reply = try await harness.local {
            try await $0.send(LocalRequest.attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
        }
        let lease = try WireCodec.lease(from: reply.fields)
        guard case .attach(let attachment)? = harness.network.recorder.calls.last else {
            return XCTFail("no attach call")
        }
        XCTAssertEqual(attachment.namespace, .named("ctr-web"))
        XCTAssertEqual(attachment.address, lease.address)
        XCTAssertEqual(attachment.gateway, IPv4Address(172, 30, 0, 1))
        XCTAssertEqual(attachment.bridge, "nl-prod")
        XCTAssertEqual(attachment.prefix, 24)

        _ = try await harness.local { try await $0.send(LocalRequest.detach(network: "prod", owner: "web")) }
        XCTAssertEqual(harness.network.recorder.calls.last, .detach(network: "prod", owner: "web"))
        let held = try await admin("listing web's lease") { try await $0.leases(.init(network: "prod", owner: "web")) }
        XCTAssertEqual(held, [])
    }

    func testAttachIntoARefusedNamespaceLeasesNothing() async throws {
        let harness = try makeAgent()
        harness.start()
        _ = try await harness.waitUntilReady()
        harness.network.recorder.setRefusedNamespaces([.path("/proc/self/ns/net")])
        do {
            _ = try await harness.local {
                try await $0.send(
                    LocalRequest.attach(
                        network: "prod",
                        owner: "web",
                        netns: "/proc/self/ns/net",
                        ifname: "eth0"
                    )
                )
            }
            XCTFail("attach into the agent's own namespace succeeded")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .badRequest, error.message)
        }
        let calls = harness.network.recorder.calls.filter {
            switch $0 {
            case .checkNamespace, .attach, .detach: return true
            default: return false
            }
        }
        XCTAssertEqual(calls, [.checkNamespace(.path("/proc/self/ns/net"))])
        XCTAssertEqual(harness.prober.probes, [], "an address was probed for a refused request")
        let leases = try await admin("listing web's lease") {
            try await $0.leases(.init(network: "prod", owner: "web"))
        }
        XCTAssertEqual(leases, [])
        let cooling = try await admin("listing cooldowns") {
            try await $0.leases(.init(network: "prod", state: .cooldown))
        }
        XCTAssertEqual(cooling, [])
    }

    func testAFailingRepeatAttachLeavesTheWorkingContainerAndItsLease() async throws {
        let harness = try makeAgent()
        harness.start()
        _ = try await harness.waitUntilReady()
        let first = try await harness.local {
            try await $0.send(LocalRequest.attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
        }
        let address = try WireCodec.lease(from: first.fields).address
        harness.network.recorder.setError(HostNetworkError(.commandFailed, "nsenter: cannot open /gone"))
        do {
            _ = try await harness.local {
                try await $0.send(LocalRequest.attach(network: "prod", owner: "web", netns: "/gone", ifname: "eth0"))
            }
            XCTFail("the repeat attach succeeded")
        } catch {}
        harness.network.recorder.setError(nil)
        let detaches = harness.network.recorder.calls.filter {
            if case .detach = $0 { return true }
            return false
        }
        XCTAssertEqual(detaches, [], "a failed repeat attach unplumbed the working container")
        let held = try await admin("listing web's lease") { try await $0.leases(.init(network: "prod", owner: "web")) }
        XCTAssertEqual(held.map(\.address), [address], "a failed repeat attach released the working container's lease")
    }

    func testConcurrentAttachesOfOneOwnerAreServedOnce() async throws {
        let harness = try makeAgent()
        harness.prober.setDuration(.milliseconds(300))
        harness.start()
        _ = try await harness.waitUntilReady()
        let attach = { @Sendable () async throws -> IPv4Address in
            let reply = try await harness.local {
                try await $0.send(LocalRequest.attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
            }
            return try WireCodec.lease(from: reply.fields).address
        }
        async let first = attach()
        try await Task.sleep(for: .milliseconds(50))
        async let second = attach()
        let (one, two) = try await (first, second)
        XCTAssertEqual(one, two)
        XCTAssertEqual(harness.prober.probes.map(\.address), [one], "the owner's address was probed twice")
    }

    /// An agent with a state directory of its own (for a second agent to start from), started and ready.
    private func readyAgentWithItsOwnDirectory() async throws -> (AgentHarness, URL) {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-agent-\(UUID().uuidString.prefix(8))")
        let agent = try makeAgent(directory: directory)
        agent.start()
        _ = try await agent.waitUntilReady()
        return (agent, directory)
    }

    func testRestartedAgentReconcilesAndDoctorReportsDisagreements() async throws {
        let (first, directory) = try await readyAgentWithItsOwnDirectory()
        let reply = try await first.local {
            try await $0.send(LocalRequest.attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
        }
        let address = try WireCodec.lease(from: reply.fields).address
        await first.stop()

        // While the agent is down an admin frees the address and someone else takes it.
        try await admin("freeing and taking the address") { c in
            _ = try await c.release(ReleaseRequest(network: "prod", address: address))
            _ = try await c.acquire(AcquireRequest(network: "prod", owner: "squatter", address: address))
        }
        let second = try makeAgent(directory: directory)
        second.start()
        _ = try await second.waitUntilReady()
        let doctor = try await second.local { try await $0.send(LocalRequest.doctor) }
        let checks = try doctor.records.map(DoctorCheck.init(fields:))
        let reconcile = checks.first { $0.name == "reconcile" }
        XCTAssertEqual(reconcile?.ok, false)
        XCTAssertTrue(reconcile?.detail.contains("squatter") ?? false, reconcile?.detail ?? "")
        XCTAssertEqual(checks.first { $0.name == "coordinator" }?.ok, true)
        XCTAssertEqual(checks.first { $0.name == "prod/host-network" }?.ok, true)
        let holder = try await admin("listing the squatter's lease") {
            try await $0.leases(.init(network: "prod", owner: "squatter"))
        }
        XCTAssertEqual(holder.map(\.address), [address], "reconcile must not take the address back")
    }

    /// An interrupted request whose owner is leased on another host left nothing here to give back; its pending
    /// record used to stay for good (the release refused at every reconnect, doctor showing it unrepaired).
    func testAnInterruptedRequestOfAnotherHostsOwnerIsForgottenAndItsLeaseLeftAlone() async throws {
        let (first, directory) = try await readyAgentWithItsOwnDirectory()
        await first.stop()
        let elsewhere = try await admin("h2's lease") {
            try await $0.acquire(AcquireRequest(network: "prod", owner: "elsewhere", claim: HostClaim(host: "h2")))
        }
        let file = directory.appendingPathComponent("state/leases.json")
        // No lease yet: the first agent may have written no file.
        var records =
            try (try? Data(contentsOf: file)).map { try JSONDecoder().decode([LocalLease].self, from: $0) } ?? []
        records.append(
            LocalLease(
                network: "prod",
                owner: "elsewhere",
                address: nil,
                prefix: 24,
                ifname: "",
                netns: nil,
                state: .pending
            )
        )
        try JSONEncoder().encode(records).write(to: file)

        let second = try makeAgent(directory: directory)
        second.start()
        _ = try await second.waitUntilReady()
        let kept = try JSONDecoder().decode([LocalLease].self, from: Data(contentsOf: file))
        XCTAssertFalse(kept.contains { $0.owner == "elsewhere" }, "the interrupted request's record stayed")
        let theirs = try await admin("h2's lease after the recovery") {
            try await $0.leases(.init(network: "prod", owner: "elsewhere"))
        }
        XCTAssertEqual(theirs, [elsewhere], "h2's lease was touched")
        let checks = try await second.local { try await $0.send(LocalRequest.doctor) }.records
            .map(DoctorCheck.init(fields:))
        let leases = try XCTUnwrap(checks.first { $0.name == "leases" })
        XCTAssertFalse(leases.detail.contains("'elsewhere'"), leases.detail)
    }

    /// An agent killed in the middle of an ATTACH leaves a pending record and a lease; the next one undoes the
    /// request, and doctor names what it cannot account for.
    func testARestartedAgentUndoesARequestThatNeverFinishedAndDoctorSeesBothWays() async throws {
        let (first, directory) = try await readyAgentWithItsOwnDirectory()
        let web = try await first.local {
            try await $0.send(LocalRequest.attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
        }
        await first.stop()

        // What a kill during the probe of "ghost" leaves: its record, pending, and its lease at the coordinator.
        // And a lease of this host that no record names.
        let ghost = try await admin("the interrupted lease") {
            try await $0.acquire(AcquireRequest(network: "prod", owner: "ghost", claim: HostClaim(host: "h1")))
        }
        _ = try await admin("a stray lease") {
            try await $0.acquire(AcquireRequest(network: "prod", owner: "stray", claim: HostClaim(host: "h1")))
        }
        let file = directory.appendingPathComponent("state/leases.json")
        var records = try JSONDecoder().decode([LocalLease].self, from: Data(contentsOf: file))
        records.append(
            LocalLease(
                network: "prod",
                owner: "ghost",
                address: ghost.address,
                prefix: 24,
                ifname: "eth0",
                netns: "ctr-ghost",
                state: .pending
            )
        )
        try JSONEncoder().encode(records).write(to: file)

        let second = try makeAgent(directory: directory)
        second.start()
        _ = try await second.waitUntilReady()
        XCTAssertTrue(second.network.recorder.calls.contains(.detach(network: "prod", owner: "ghost")))
        let ghostLeases = try await admin("listing ghost's lease") {
            try await $0.leases(.init(network: "prod", owner: "ghost"))
        }
        XCTAssertEqual(ghostLeases, [], "the interrupted request's lease was not released")
        let kept = try JSONDecoder().decode([LocalLease].self, from: Data(contentsOf: file))
        XCTAssertEqual(kept.map(\.owner), ["web"])
        XCTAssertEqual(kept.first?.state, .ready)
        XCTAssertEqual(kept.first?.address, try WireCodec.lease(from: web.fields).address.description)

        func doctor() async throws -> [String: DoctorCheck] {
            let checks = try await second.local { try await $0.send(LocalRequest.doctor) }.records
                .map(DoctorCheck.init(fields:))
            return Dictionary(uniqueKeysWithValues: checks.map { ($0.name, $0) })
        }
        var checks = try await doctor()
        XCTAssertEqual(checks["leases"]?.ok, false)
        XCTAssertTrue(checks["leases"]?.detail.contains("'stray'") ?? false, checks["leases"]?.detail ?? "")
        XCTAssertEqual(checks["containers"]?.ok, true, checks["containers"]?.detail ?? "no containers check")

        second.network.recorder.setProblems(["eth0 lacks 172.30.0.2/24"], owner: "web")
        checks = try await doctor()
        XCTAssertEqual(checks["containers"]?.ok, false)
        XCTAssertTrue(checks["containers"]?.detail.contains("'web'") ?? false, checks["containers"]?.detail ?? "")

        // Plumbed but recorded nowhere: a container veth on the bridge that no record names.
        second.network.recorder.setProblems([], owner: "web")
        second.network.recorder.setForeignPorts(["nl0123456789abc"])
        checks = try await doctor()
        XCTAssertEqual(checks["containers"]?.ok, false)
        XCTAssertEqual(
            checks["containers"]?.detail,
            "prod: veth nl0123456789abc on nl-prod belongs to no recorded container"
        )
    }

    func testAgentRejoinsWithANewEpochWhenFenced() async throws {
        let harness = try makeAgent()
        harness.start()
        _ = try await harness.waitUntilReady()
        let coordinator = try XCTUnwrap(self.coordinator)
        let epochs = try await withDeadline("the agent's rejoin") {
            try await coordinator.connect { watcher -> (before: Int64, usurper: Int64, rejoined: Int64)? in
                let (hosts, events) = try await watcher.watch()
                let before = try XCTUnwrap(hosts.first { $0.name == "h1" }).epoch
                // Someone else joins as h1: the running agent's epoch is now stale and its next heartbeat is refused.
                let usurper = try await coordinator.connect {
                    try await $0.join(host: "h1", underlay: IPv4Address(10, 9, 0, 1))
                }
                for await event in events {
                    if case .host(let host) = event, host.name == "h1", host.epoch > usurper.epoch {
                        return (before, usurper.epoch, host.epoch)
                    }
                }
                return nil
            }
        }
        let seen = try XCTUnwrap(epochs, "the event stream ended before the agent rejoined")
        XCTAssertEqual(seen.usurper, seen.before + 1)
        XCTAssertGreaterThan(seen.rejoined, seen.usurper)
    }

    func testACoordinatorRestoredFromAnOlderBackupIsDetectedAndReconciled() async throws {
        // The agent keeps one address while the coordinator behind it is replaced (a fresh port 0: rebinding the
        // old port would race other processes for it).
        let relay = try TCPRelay(to: coordinator.endpoint)
        defer { relay.close() }
        let harness = try makeAgent(via: relay.endpoint)
        harness.start()
        _ = try await harness.waitUntilReady()
        let web = try await harness.local {
            try await $0.send(LocalRequest.attach(network: "prod", owner: "web", netns: "ctr-web", ifname: "eth0"))
        }
        let backup = try await admin("taking a backup") { try await $0.backup() }
        XCTAssertFalse(backup.data.isEmpty)
        let api = try await harness.local {
            try await $0.send(LocalRequest.attach(network: "prod", owner: "api", netns: "ctr-api", ifname: "eth0"))
        }
        let apiAddress = try WireCodec.lease(from: api.fields).address

        // The coordinator is lost and brought back from the backup, on the same address (the relay's).
        let lost = try XCTUnwrap(coordinator)
        try await withDeadline("the coordinator's stop") { await lost.stop() }
        let restored = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-restore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: restored, withIntermediateDirectories: true)
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: restored.appendingPathComponent("netlease.db").path,
                contents: backup.data
            )
        )
        coordinator = try await withDeadline("the restored coordinator's start") {
            try await CoordinatorHarness.start(directory: restored)
        }
        relay.retarget(to: coordinator.endpoint)
        let before = try await admin("listing api's lease") {
            try await $0.leases(.init(network: "prod", owner: "api"))
        }
        XCTAssertEqual(before, [], "the backup predates the 'api' lease")

        var checks: [DoctorCheck] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let reply = try? await harness.local { try await $0.send(LocalRequest.doctor) }
            checks = (try? reply?.records.map(DoctorCheck.init(fields:))) ?? []
            if checks.first(where: { $0.name == "store" })?.ok == false,
                checks.first(where: { $0.name == "leases" })?.ok == true
            {
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let store = checks.first { $0.name == "store" }
        XCTAssertEqual(store?.ok, false)
        XCTAssertTrue(store?.detail.contains("older backup") ?? false, store?.detail ?? "no store check")
        XCTAssertEqual(checks.first { $0.name == "leases" }?.ok, true)
        let after = try await admin("listing api's lease") { try await $0.leases(.init(network: "prod", owner: "api")) }
        XCTAssertEqual(after.map(\.address), [apiAddress], "the agent's lease was not reconciled back")
        let webLease = try await admin("listing web's lease") {
            try await $0.leases(.init(network: "prod", owner: "web"))
        }
        XCTAssertEqual(webLease.map(\.address), [try WireCodec.lease(from: web.fields).address])
    }

    func testDoctorPingsEveryPeersBridgeAddressAndNamesTheSilentOnes() async throws {
        let harness = try makeAgent()
        harness.start()
        _ = try await harness.waitUntilReady()
        let peer = try await admin("h2 joins") { try await $0.join(host: "h2", underlay: IPv4Address(10, 9, 0, 2)) }
        try await harness.network.nextCall("the mesh to h2") { call -> Void? in
            if case .ensureNetwork(let config) = call, config.peers["h2"] != nil { return () }
            return nil
        }
        func doctor() async throws -> [DoctorCheck] {
            try await harness.local { try await $0.send(LocalRequest.doctor) }.records.map(DoctorCheck.init(fields:))
        }
        let healthy = try await doctor().first { $0.name == "prod/peer-bridges" }
        XCTAssertEqual(healthy?.ok, true, healthy?.detail ?? "no peer-bridges check")
        XCTAssertTrue(harness.network.recorder.calls.contains(.reachable(peer.bridges[0].address)))

        harness.network.recorder.setUnreachable([peer.bridges[0].address])
        let silent = try await doctor().first { $0.name == "prod/peer-bridges" }
        XCTAssertEqual(silent?.ok, false)
        XCTAssertTrue(silent?.detail.contains("h2 (\(peer.bridges[0].address))") ?? false, silent?.detail ?? "")
    }
}
