import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import XCTest

/// The real Docker daemon (Debian's docker.io) using the agent as its IPAM driver: one agent and one dockerd per host
/// namespace, the Docker network created with the line `netlease docker-network` prints.
final class DockerTests: LabTestCase {
    private var dockers: [Int: LabDocker] = [:]

    override func setUp() async throws {
        // Before the lab exists: a test that stops here leaves nothing to remove.
        if let problem = LabDocker.capabilityProblem() {
            if LabRequirement.isRequired {
                XCTFail("NETLEASE_REQUIRE_NETNS=1 but the Docker tests cannot run: \(problem)")
                throw NetleaseError(.unavailable, problem)
            }
            throw XCTSkip("Docker tests skipped: \(problem) (Debian packages docker.io and busybox-static)")
        }
        try await super.setUp()
    }

    override func tearDown() async throws {
        // Containers go through their daemons while the agents still run, so their addresses are released.
        for docker in dockers.values { await docker.removeEverything() }
        for (host, docker) in dockers {
            XCTAssertEqual(docker.leftoverProcesses(), [], "dockerd of host \(host) left processes behind")
        }
        dockers = [:]
        try await super.tearDown()
    }

    private func pluginSocket(_ host: Int) -> String { lab.directory + "/h\(host)-docker-plugin.sock" }

    /// Each agent's address pool: small, so that a test knows when every pool is full.
    static let poolSize = 4

    private func agentArguments(_ host: Int) -> [String] {
        ["--docker-plugin", pluginSocket(host), "--pool-size", String(Self.poolSize)]
    }

    /// Starts host `index`'s agent serving the plugin API, then its dockerd with the busybox image.
    private func startDockerHost(_ index: Int) async throws -> LabDocker {
        try await cluster.startAgent(index, extraArguments: agentArguments(index))
        return try await startDaemon(index)
    }

    private func startDaemon(_ index: Int) async throws -> LabDocker {
        let docker = try LabDocker(lab: lab, host: index, pluginSocket: pluginSocket(index))
        dockers[index] = docker
        try await docker.start()
        try await docker.importBusybox()
        return docker
    }

    /// The `docker network create` line as `netlease docker-network` prints it on host 1 (asking its agent),
    /// checked word for word: the line of the Docker integration plus the bridge's MTU.
    private func createLine() async throws -> [String] {
        let line = try await lab.run(
            lab.hostNamespace(1),
            [cluster.binary, "docker-network", "demo", "--socket", cluster.socket(host: 1)]
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(line, Self.requiredLine + " -o com.docker.network.driver.mtu=1450 demo")
        let words = line.split(separator: " ").map(String.init)
        XCTAssertEqual(words.first, "docker")
        return Array(words.dropFirst())
    }

    /// The line the Docker integration promises to keep working, before the network's name; `netlease
    /// docker-network` adds the MTU to it.
    private static let requiredLine =
        "docker network create --driver bridge --ipam-driver netlease --ipam-opt network=demo "
        + "--subnet 172.30.0.0/16 -o com.docker.network.bridge.name=nl-demo"

    /// Name → (address, MAC) of the containers on the `demo` network, as Docker reports them.
    private func inspect(_ docker: LabDocker, _ names: [String]) async throws -> [String: (IPv4Address, String)] {
        let format = "{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{.MacAddress}}{{end}}"
        let text = try await docker.docker(["inspect", "-f", format] + names).stdout
        var result: [String: (IPv4Address, String)] = [:]
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 3, let address = IPv4Address(words[1]) else {
                XCTFail("docker inspect printed '\(line)'")
                continue
            }
            result[String(words[0].dropFirst())] = (address, words[2])
        }
        return result
    }

    /// Runs `names` as detached containers on `demo`, all at once.
    private static func run(_ docker: LabDocker, _ names: [String]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in names {
                group.addTask {
                    try await docker.docker([
                        "run", "-d", "--network", "demo", "--name", name, LabDocker.image,
                        "sleep", "3600",
                    ])
                }
            }
            try await group.waitForAll()
        }
    }

    /// The targets a container cannot ping (each tried three times: a fresh path may lose its first packet).
    private func unreachable(
        from container: String,
        on docker: LabDocker,
        _ targets: [IPv4Address]
    ) async throws
        -> [String]
    {
        let output = try await docker.docker(
            ["exec", container, "sh", "-c", Self.unreachableScript, "sh"]
                + targets.map(\.description)
        ).stdout
        return output.split(separator: "\n").map(String.init)
    }

    /// Leases in `state` by address; for `active`, the bridges' own (owner `bridge:HOST`) and the agents' address
    /// pools (owner `pool:HOST:…`, which come and go as the agents keep them full) left out.
    private func leases(state: String) async throws -> [String: [String: Any]] {
        var byAddress: [String: [String: Any]] = [:]
        for lease in try await cluster.leasesJSON(["--state", state]) {
            // Active: containers' leases only. Other states keep every record: a pool fill that heard the squatter
            // quarantines the address under its pool owner.
            let owner = lease["owner"] as? String ?? ""
            if state == "active", owner.hasPrefix("bridge:") || owner.hasPrefix("pool:") { continue }
            if let address = lease["address"] as? String { byAddress[address] = lease }
        }
        return byAddress
    }

    /// Puts a namespace on host 1's bridge that answers ARP for `address`, as a hand-configured machine would.
    private func squat(_ address: IPv4Address) async throws -> String {
        let rogue = try await lab.addNamespace(role: "rogue")
        let hostNamespace = lab.hostNamespace(1)
        try await lab.run(
            hostNamespace,
            [
                "ip", "link", "add", "rogue0", "type", "veth", "peer", "name", "eth0",
                "netns", rogue,
            ]
        )
        try await lab.run(hostNamespace, ["ip", "link", "set", "rogue0", "master", "nl-demo", "up"])
        try await lab.run(rogue, ["ip", "addr", "add", "\(address)/16", "dev", "eth0"])
        try await lab.run(rogue, ["ip", "link", "set", "eth0", "up"])
        let link = try await lab.run(rogue, ["ip", "-j", "link", "show", "eth0"]).stdout
        return try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(link.utf8)) as? [[String: Any]])?.first?["address"]
                as? String
        )
    }

    /// Every lease (cooling ones too) once each of `hosts` agents holds a full pool (`poolSize` addresses);
    /// fails after a minute.
    private func heldOncePoolsAreFull(hosts: Int) async throws -> [(owner: String, address: IPv4Address)] {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while clock.now < deadline {
            let listed = try await cluster.leasesJSON() + cluster.leasesJSON(["--state", "cooldown"])
            let all = listed.compactMap { lease -> (owner: String, address: IPv4Address)? in
                guard let owner = lease["owner"] as? String, let text = lease["address"] as? String,
                    let address = IPv4Address(text)
                else { return nil }
                return (owner, address)
            }
            if all.filter({ $0.owner.hasPrefix("pool:") }).count == Self.poolSize * hosts { return all }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTFail("the agents' pools did not fill")
        throw CancellationError()
    }

    /// Waits up to a minute for `address` to be released (in cooldown).
    private func waitForCooldown(
        _ address: IPv4Address,
        file: StaticString = #filePath,
        line: UInt = #line
    )
        async throws
    {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while clock.now < deadline {
            if try await leases(state: "cooldown")[address.description] != nil { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        XCTFail("\(address) was never released", file: file, line: line)
    }

    func testTwoHostsOfTwentyContainersUniqueReachableReleasedAndKeptAcrossADockerdRestart() async throws {
        let started = ContinuousClock.now
        try await cluster.startCoordinator()
        let (first, second) = try await (startDockerHost(1), startDockerHost(2))
        let daemons = [1: first, 2: second]
        // Once both agents' pools are full, the coordinator's next address is the one after the highest it ever
        // handed out (it hands out never-used addresses in order first): someone took it by hand on host1. Whoever
        // leases it next (a container or a pool refill) probes it in full.
        let held = try await heldOncePoolsAreFull(hosts: 2)
        let bridges = Set(held.filter { $0.owner.hasPrefix("bridge:") }.map(\.address))
        let squatted = IPv4Address(try XCTUnwrap(held.map(\.address.value).max()) + 1)
        let rogueMAC = try await squat(squatted)

        let create = try await createLine()
        for docker in daemons.values { try await docker.docker(create) }

        let names = [1: (1...20).map { "h1-c\($0)" }, 2: (1...20).map { "h2-c\($0)" }]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (host, docker) in daemons {
                let list = names[host]!
                group.addTask { try await Self.run(docker, list) }
            }
            try await group.waitForAll()
        }
        var containers: [String: (host: Int, address: IPv4Address, mac: String)] = [:]
        for (host, docker) in daemons {
            for (name, (address, mac)) in try await inspect(docker, names[host]!) {
                containers[name] = (host, address, mac)
            }
        }
        XCTAssertEqual(containers.count, 40)
        let addresses = containers.values.map(\.address)
        XCTAssertEqual(Set(addresses).count, 40, "an address was handed out twice")
        XCTAssertFalse(addresses.contains(squatted), "an address in use on the bridge was given to a container")
        XCTAssertTrue(bridges.isDisjoint(with: addresses), "a container got a bridge address: \(bridges)")

        let conflicts = try await leases(state: "conflict")
        XCTAssertEqual(conflicts[squatted.description]?["mac"] as? String, rogueMAC, "\(conflicts)")
        let active = try await leases(state: "active")
        for (name, container) in containers {
            let lease = active[container.address.description]
            XCTAssertEqual(lease?["host"] as? String, cluster.hostName(container.host), "\(name)")
            XCTAssertEqual(lease?["owner"] as? String, "docker/\(container.mac)", "\(name)")
        }
        XCTAssertEqual(active.count, 40, "leases that Docker does not know: \(active.keys.sorted())")
        let mtu = try await first.docker(["exec", "h1-c1", "cat", "/sys/class/net/eth0/mtu"]).stdout
        XCTAssertEqual(mtu.trimmingCharacters(in: .whitespacesAndNewlines), "1450", "containers get the bridge's MTU")

        for (host, docker) in daemons {
            let others = containers.values.filter { $0.host != host }.map(\.address)
            let failed = try await unreachable(from: "h\(host)-c1", on: docker, others)
            XCTAssertEqual(failed, [], "from host\(host): unreachable \(failed)")
        }

        // docker rm -f releases the lease: the address cools down and is handed to no one meanwhile.
        let removed = try XCTUnwrap(containers["h2-c20"])
        try await second.docker(["rm", "-f", "h2-c20"])
        let cooling = try await leases(state: "cooldown")
        XCTAssertNotNil(cooling[removed.address.description], "docker rm -f did not release \(removed.address)")
        let stillActive = try await leases(state: "active")
        XCTAssertNil(stillActive[removed.address.description])

        // Removed while its host is cut off from the coordinator: Docker is answered within the plugin's deadline,
        // and the release it never repeats is finished by the agent once the coordinator is back.
        let cutOff = try XCTUnwrap(containers["h2-c19"])
        try await lab.setUnderlay(host: 2, up: false)
        let clock = ContinuousClock()
        let removing = clock.now
        try await second.docker(["rm", "-f", "h2-c19"])
        XCTAssertLessThan(clock.now - removing, Duration.seconds(15), "docker rm -f waited for the coordinator")
        try await lab.setUnderlay(host: 2, up: true)
        try await waitForCooldown(cutOff.address)
        let agentLog = cluster.agent(2)?.log ?? ""
        XCTAssertTrue(agentLog.contains("is released later"), "the release was not deferred:\n\(agentLog)")

        // Removed while host2's agent restarts: Docker's plugin client retries the connection for a while, the new
        // agent's plugin socket answers before its networks are ready, and the release is finished once they are.
        let duringRestart = try XCTUnwrap(containers["h2-c18"])
        XCTAssertEqual(cluster.stopAgent(2), 0, "agent 2 did not stop cleanly")
        async let removal = second.docker(["rm", "-f", "h2-c18"])
        try await Task.sleep(for: .milliseconds(500))
        try await cluster.startAgent(2, createHost: false, extraArguments: agentArguments(2))
        _ = try await removal
        try await waitForCooldown(duringRestart.address)

        // A restarted dockerd (live restore) replays its pools and addresses: nothing is released or moved.
        await first.stop()
        try await first.start()
        let after = try await inspect(first, names[1]!)
        for name in names[1]! {
            XCTAssertEqual(after[name]?.0, containers[name]?.address, "\(name) changed address across the restart")
        }
        let restartedLog = try XCTUnwrap(
            try? String(contentsOfFile: lab.directory + "/docker-h1/dockerd-2.log", encoding: .utf8)
        )
        for complaint in ["Failed to reserve", "Failed to allocate ipam pool", "Removing stale endpoint"] {
            XCTAssertFalse(restartedLog.contains(complaint), "the restarted dockerd logged '\(complaint)'")
        }
        try await Self.run(first, ["h1-new"])
        let newContainer = try await inspect(first, ["h1-new"])
        let fresh = try XCTUnwrap(newContainer["h1-new"])
        XCTAssertFalse(addresses.contains(fresh.0), "the new container got an address in use: \(fresh.0)")
        XCTAssertNotEqual(fresh.0, squatted)
        let activeAfter = try await leases(state: "active")
        XCTAssertEqual(activeAfter.count, 38, "37 containers kept and one new: \(activeAfter.keys.sorted())")
        XCTAssertEqual(activeAfter[fresh.0.description]?["owner"] as? String, "docker/\(fresh.1)")
        let failed = try await unreachable(from: "h1-new", on: first, [containers["h2-c1"]!.address])
        XCTAssertEqual(failed, [], "the container started after the restart cannot reach host2")
        print("Docker scenario took \(ContinuousClock.now - started)")
    }

    func testPluginCallsBeforeTheAgentIsReadyFailClearlyAndSucceedOnceItIs() async throws {
        try await cluster.startCoordinator()
        try await lab.addHost(1)
        // Cut off from the coordinator, the agent cannot join: its plugin socket answers, its networks are not ready.
        try await lab.setUnderlay(host: 1, up: false)
        let agent = try lab.spawn(
            lab.hostNamespace(1),
            [
                cluster.binary, "agent", "--coordinator", cluster.coordinatorAddress, "--secret-file",
                cluster.secretFile,
                "--host", cluster.hostName(1), "--underlay", lab.underlayAddress(host: 1).description,
                "--network", "demo", "--socket", cluster.socket(host: 1), "--state-dir", lab.directory + "/h1-state",
                "--docker-plugin", pluginSocket(1), "--log-level", "notice",
            ],
            name: "agent-h1-early"
        )
        let docker = try await startDaemon(1)
        // The agent is not ready, so `netlease docker-network` cannot ask it: the line without the MTU, as a user
        // writes it by hand, which must keep working too.
        let create = (Self.requiredLine + " demo").split(separator: " ").dropFirst().map(String.init)

        let clock = ContinuousClock()
        var refused = CommandResult()
        let took = await clock.measure { refused = await docker.dockerAllowingFailure(create) }
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(
            refused.stderr.contains("netlease: the netlease agent on this host is not ready"),
            refused.stderr
        )
        XCTAssertLessThan(took, .seconds(10), "Docker waited instead of getting an answer")

        try await lab.setUnderlay(host: 1, up: true)
        let ready = await agent.line(containing: "ready on", timeout: .seconds(30))
        XCTAssertNotNil(ready, "the agent did not become ready:\n\(agent.log)")
        // The same daemon, with the plugin it activated before: now the network and a container work.
        try await docker.docker(create)
        try await Self.run(docker, ["early-c1"])
        let early = try await inspect(docker, ["early-c1"])
        let container = try XCTUnwrap(early["early-c1"])
        let active = try await leases(state: "active")
        XCTAssertEqual(active[container.0.description]?["owner"] as? String, "docker/\(container.1)")
    }
}
