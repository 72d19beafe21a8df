import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// What `netlease attach` must never do, whatever it is asked: plumb the host itself, take a working container's
/// interface or address away, hand out an address that answers late, split one owner over two addresses, or leave
/// a lease or a half-plumbed container behind after the agent is killed.
final class AttachSafetyTests: LabTestCase {
    private var hostNamespace: String { lab.hostNamespace(1) }

    /// Runs `netlease attach` on host 1; nil when it fails.
    private func attach(owner: String, netns: String) async -> String? {
        try? await lab.run(
            hostNamespace,
            [
                cluster.binary, "attach", "--socket", cluster.socket(host: 1), "--network", cluster.network,
                "--netns", netns, "--owner", owner,
            ]
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `ip -j` output of `arguments` inside `namespace`, parsed.
    private func json(_ namespace: String, _ arguments: [String], via: [String] = []) async throws -> [[String: Any]] {
        let text = try await lab.run(namespace, via + ["ip", "-j"] + arguments).stdout
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
    }

    /// Interfaces enslaved to the network's bridge on host 1 other than the tunnel: the containers' host ends.
    private func containerPorts() async throws -> [String] {
        try await json(hostNamespace, ["-d", "link", "show", "master", "nl-demo"])
            .filter { (($0["linkinfo"] as? [String: Any])?["info_kind"] as? String) == "veth" }
            .compactMap { $0["ifname"] as? String }
    }

    /// IPv4 addresses (CIDR) on `ifname` inside `namespace` (or where `via` enters from there); empty when the
    /// interface is missing.
    private func addresses(_ namespace: String, _ ifname: String, via: [String] = []) async -> [String] {
        let links = (try? await json(namespace, ["addr", "show", "dev", ifname], via: via)) ?? []
        return links.flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
            .filter { $0["family"] as? String == "inet" }
            .compactMap { info in
                guard let local = info["local"] as? String, let prefix = info["prefixlen"] as? Int else { return nil }
                return "\(local)/\(prefix)"
            }
    }

    private func doctorPasses() async -> (Bool, String) {
        let result = try? await lab.run(
            hostNamespace,
            [
                "sh", "-c", "\"$0\" doctor --socket \"$1\" --json; echo exit=$?", cluster.binary,
                cluster.socket(host: 1),
            ]
        ).stdout
        let output = result ?? ""
        return (output.contains("exit=0"), output)
    }

    func testAttachRefusesTheHostsOwnNamespaceAndNonNamespaces() async throws {
        try await cluster.startCoordinator()
        try await cluster.startAgent(1, extraArguments: Self.probeArguments)
        let gateway = lab.serviceAddress.description
        try await lab.run(hostNamespace, ["ip", "route", "add", "default", "via", gateway, "dev", "underlay0"])
        let file = lab.directory + "/not-a-namespace"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))

        for netns in [
            "/proc/self/ns/net", "/var/run/netns/" + hostNamespace, "/run/netns/" + hostNamespace, file,
            "/var/run/netns/../../proc/self/ns/net", "/etc/hostname",
        ] {
            let given = await attach(owner: "intruder", netns: netns)
            XCTAssertNil(given, "attach into \(netns) was accepted")
        }
        let routes = try await json(hostNamespace, ["route", "show", "default"])
        XCTAssertEqual(routes.count, 1, "\(routes)")
        XCTAssertEqual(routes.first?["gateway"] as? String, gateway, "the host's default route was replaced")
        XCTAssertEqual(routes.first?["dev"] as? String, "underlay0")
        let ports = try await containerPorts()
        XCTAssertEqual(ports, [], "a veth was added for a refused attach")
        let active = try await leaseAddresses()
        XCTAssertNil(active["intruder"], "a refused attach holds a lease")
        let cooling = try await leaseAddresses(state: "cooldown")
        XCTAssertEqual(cooling, [:], "refused attaches burnt addresses into cooldown")
    }

    /// `netlease attach --pid PID` on host 1: the command's combined output and its exit status.
    private func attach(owner: String, pid: Int32) async throws -> (output: String, status: Int32) {
        let output = try await lab.run(
            hostNamespace,
            [
                "sh", "-c",
                "\"$0\" attach --socket \"$1\" --network \"$2\" --owner \"$3\" --pid \"$4\" 2>&1; echo \"exit=$?\"",
                cluster.binary, cluster.socket(host: 1), cluster.network, owner, String(pid),
            ]
        ).stdout
        let status = output.split(separator: "\n").last { $0.hasPrefix("exit=") }.flatMap { Int32($0.dropFirst(5)) }
        return (output, status ?? -1)
    }

    /// Device and inode of a namespace file (links followed), to see which namespace a process is in.
    private func namespaceIdentity(_ path: String) -> [UInt64]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [UInt64(info.st_dev), UInt64(info.st_ino)]
    }

    /// Starts a "container" as Docker's `--network none` leaves one: a process in a network namespace of its own,
    /// which ends with it. Returns once the process is in that namespace.
    private func startNetworklessProcess(_ name: String) async throws -> LabProcess {
        let process = try lab.spawn(hostNamespace, ["unshare", "--net", "sleep", "600"], name: name)
        let host = namespaceIdentity("/run/netns/\(hostNamespace)")
        let entered = await eventually(.seconds(10)) {
            let inside = self.namespaceIdentity("/proc/\(process.pid)/ns/net")
            return inside != nil && inside != host
        }
        XCTAssertTrue(entered, "the process never entered a namespace of its own")
        return process
    }

    /// IPv4 addresses (CIDR) on eth0 in the network namespace of process `pid`.
    private func addresses(pid: Int32) async -> [String] {
        await addresses(hostNamespace, "eth0", via: ["nsenter", "--net=/proc/\(pid)/ns/net"])
    }

    /// `attach --pid` plumbs exactly the process's namespace; PID 1 and a process in the host's (the agent's)
    /// namespace are refused with a message that says why, and leave no veth and no lease behind. A restarted
    /// container (new process, new namespace) attached again with the same owner keeps its address.
    func testAttachByPIDPlumbsTheProcessesNamespaceAndRefusesTheHosts() async throws {
        try await cluster.startCoordinator()
        let agent = try await cluster.startAgent(1, extraArguments: Self.probeArguments)
        let container = try await startNetworklessProcess("pid-container")

        let refusedInit = try await attach(owner: "by-init", pid: 1)
        XCTAssertEqual(refusedInit.status, 64, refusedInit.output)
        XCTAssertTrue(refusedInit.output.contains("host's init"), refusedInit.output)
        let refusedHost = try await attach(owner: "by-agent", pid: agent.pid)
        XCTAssertNotEqual(refusedHost.status, 0, refusedHost.output)
        XCTAssertTrue(refusedHost.output.contains("the agent's own network namespace"), refusedHost.output)
        let refusedPorts = try await containerPorts()
        XCTAssertEqual(refusedPorts, [], "a veth was added for a refused attach")

        let given = try await attach(owner: "by-pid", pid: container.pid)
        XCTAssertEqual(given.status, 0, given.output)
        let address = try XCTUnwrap(given.output.split(separator: "\n").first.map(String.init))
        let inside = await addresses(pid: container.pid)
        XCTAssertEqual(inside, [address], "the process's namespace did not get the address")
        let owners = try await leaseAddresses()
        XCTAssertEqual(Set(owners.keys), ["by-pid", "bridge:host1"], "a refused attach holds a lease: \(owners)")
        let gateway = try XCTUnwrap(owners["bridge:host1"])
        let reachable = await eventually(.seconds(10)) {
            let ping = try? await self.lab.run(
                self.hostNamespace,
                ["nsenter", "--net=/proc/\(container.pid)/ns/net", "ping", "-c", "1", "-W", "1", gateway]
            )
            return ping?.status == 0
        }
        XCTAssertTrue(reachable, "the container cannot reach its gateway")

        // The container restarts: its namespace ends with its process, and a new one takes its place.
        _ = container.stop(grace: .seconds(2))
        let restarted = try await startNetworklessProcess("pid-container-2")
        let again = try await attach(owner: "by-pid", pid: restarted.pid)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(again.output.split(separator: "\n").first.map(String.init), address)
        let insideAgain = await addresses(pid: restarted.pid)
        XCTAssertEqual(insideAgain, [address], "the restarted container did not get its address back")
    }

    func testAFailingRepeatAttachLeavesTheWorkingContainerAlone() async throws {
        try await cluster.startCoordinator()
        try await cluster.startAgent(1, extraArguments: Self.probeArguments)
        let address = try await cluster.attachContainer(host: 1, 1)
        let container = cluster.containerNamespace(host: 1, 1)
        let before = await addresses(container, "eth0")
        XCTAssertEqual(before, ["\(address)/16"])

        let missing = "/var/run/netns/nl\(lab.id)-gone"
        let repeated = await attach(owner: "h1-c1", netns: missing)
        XCTAssertNil(repeated, "attach into a namespace that does not exist succeeded")
        let after = await addresses(container, "eth0")
        XCTAssertEqual(after, before, "the working container lost its interface or address")
        let owners = try await leaseAddresses()
        XCTAssertEqual(owners["h1-c1"], address.description, "the working container's lease was released")
        // Requests for new owners with unusable namespaces burn nothing either.
        for number in 1...3 {
            let refused = await attach(owner: "bad-\(number)", netns: missing)
            XCTAssertNil(refused)
        }
        let cooling = try await leaseAddresses(state: "cooldown")
        XCTAssertEqual(cooling, [:], "failed attaches put addresses into cooldown")
        let reachable = await lab.ping(from: container, to: IPv4Address(172, 30, 0, 1), within: .seconds(10))
        XCTAssertTrue(reachable, "the container cannot reach its gateway any more")
    }

    func testTwoConcurrentAttachesOfOneOwnerGetOneAddress() async throws {
        try await cluster.startCoordinator()
        try await cluster.startAgent(1, extraArguments: Self.probeArguments)
        let container = cluster.containerNamespace(host: 1, 1)
        try await lab.addNamespace(container)
        let cluster = self.cluster!
        async let first = cluster.attachContainer(host: 1, 1, createNamespace: false)
        try await Task.sleep(for: .milliseconds(250))
        async let second = cluster.attachContainer(host: 1, 1, createNamespace: false)
        let (one, two) = try await (first, second)
        XCTAssertEqual(one, two, "one owner was given two addresses")
        let conflicts = try await cluster.leasesJSON(["--state", "conflict"])
        XCTAssertEqual(conflicts.count, 0, "the owner's own address was quarantined: \(conflicts)")
        let owners = try await leaseAddresses()
        XCTAssertEqual(owners["h1-c1"], one.description)
        let inside = await addresses(container, "eth0")
        XCTAssertEqual(inside, ["\(one)/16"])
    }

    /// A neighbour that answers ARP 0.4 s and 1.2 s late for the next two addresses: neither is handed out, both
    /// are quarantined with its MAC.
    func testAddressesThatAnswerLateAreNeverHandedOut() async throws {
        try await cluster.startCoordinator()
        // The bridge exists before the agent starts, so the slow neighbour is on it from the first probe on.
        try await lab.addHost(1)
        try await lab.run(hostNamespace, ["ip", "link", "add", "nl-demo", "type", "bridge"])
        let neighbour = "nl\(lab.id)-slow"
        try await lab.addNamespace(neighbour)
        try await lab.run(
            hostNamespace,
            [
                "ip", "link", "add", "slow0", "mtu", "1450", "type", "veth", "peer", "name",
                "eth0", "mtu", "1450", "netns", neighbour,
            ]
        )
        try await lab.run(hostNamespace, ["ip", "link", "set", "slow0", "master", "nl-demo", "up"])
        try await lab.run(neighbour, ["ip", "link", "set", "eth0", "up"])
        let late = IPv4Address(172, 30, 0, 2)
        let later = IPv4Address(172, 30, 0, 3)
        let responder = try LabARPResponder.start(
            in: neighbour,
            interface: "eth0",
            answering: [late: .milliseconds(400), later: .milliseconds(1200)],
            lab: lab
        )
        // RFC 5227's timing, the agent's default.
        try await cluster.startAgent(1, createHost: false)

        let given = try await cluster.attachContainer(host: 1, 1)
        XCTAssertNotEqual(given, late, "an address that answered ARP 0.4 s late was handed out")
        XCTAssertNotEqual(given, later, "an address that answered ARP 1.2 s late was handed out")
        let conflicts = try await cluster.leasesJSON(["--state", "conflict"])
        let quarantined = Dictionary(
            uniqueKeysWithValues: conflicts.compactMap { lease -> (String, String)? in
                guard let address = lease["address"] as? String, let mac = lease["mac"] as? String else { return nil }
                return (address, mac)
            }
        )
        XCTAssertEqual(quarantined[late.description], responder.mac, "\(conflicts)")
        XCTAssertEqual(quarantined[later.description], responder.mac, "\(conflicts)")
    }

    /// With RFC 5227's timing (4-6 s per probe) a container still gets its address without a full probe: from the
    /// pool, after a brief re-check. Waits for a full pool before each attach; the address each container gets is one
    /// the pool held just before (a full probe would lease a new one).
    func testAttachesFromAFullPoolTakePooledAddresses() async throws {
        try await cluster.startCoordinator()
        try await cluster.startAgent(1, extraArguments: ["--pool-size", "4"])
        let cluster = self.cluster!
        for number in 1...3 {
            let full = await eventually(.seconds(30)) {
                let output =
                    (try? await self.lab.run(
                        self.hostNamespace,
                        [
                            cluster.binary, "doctor", "--socket", cluster.socket(host: 1), "--json",
                        ]
                    ).stdout) ?? ""
                return output.contains("4 of 4 probed address(es) ready")
            }
            XCTAssertTrue(full, "the pool did not fill")
            let pooled = Set(
                try await cluster.leasesJSON().compactMap { lease -> String? in
                    guard let owner = lease["owner"] as? String, owner.hasPrefix("pool:") else { return nil }
                    return lease["address"] as? String
                }
            )
            XCTAssertEqual(pooled.count, 4, "pool leases: \(pooled)")
            let given = try await cluster.attachContainer(host: 1, number)
            XCTAssertTrue(pooled.contains(given.description), "container \(number) got \(given), not from \(pooled)")
        }
    }

    /// Probe timing for the tests that are not about it: RFC 5227's shape, shorter, so a test takes seconds.
    static let probeArguments = ["--probe-count", "2", "--probe-interval", "0.1", "--probe-wait", "0.3"]

    func testAnAgentKilledWhilePlumbingIsRepairedAtRestart() async throws {
        try await cluster.startCoordinator()
        // `nsenter` that stops at the container's default route (the last plumbing step) until its agent dies.
        let tools = lab.directory + "/slow-tools"
        let marker = lab.directory + "/plumbing-started"
        try FileManager.default.createDirectory(atPath: tools, withIntermediateDirectories: true)
        let script = """
            #!/bin/sh
            for word in "$@"; do
              if [ "$word" = route ]; then
                touch '\(marker)'
                while kill -0 $PPID 2>/dev/null; do sleep 0.1; done
                exit 1
              fi
            done
            exec /usr/bin/nsenter "$@"
            """
        FileManager.default.createFile(
            atPath: tools + "/nsenter",
            contents: Data(script.utf8),
            attributes: [.posixPermissions: 0o755]
        )
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        let agent = try await cluster.startAgent(
            1,
            extraArguments: Self.probeArguments,
            wrapper: ["env", "PATH=\(tools):\(path)"]
        )
        let container = cluster.containerNamespace(host: 1, 1)
        try await lab.addNamespace(container)
        let cluster = self.cluster!
        let attaching = Task { try? await cluster.attachContainer(host: 1, 1, createNamespace: false) }
        let started = await eventually(.seconds(30)) { FileManager.default.fileExists(atPath: marker) }
        XCTAssertTrue(started, "plumbing never reached the default route")
        agent.kill9()
        _ = await attaching.value

        try await cluster.startAgent(1, createHost: false, extraArguments: Self.probeArguments)
        let owners = try await leaseAddresses()
        XCTAssertNil(owners["h1-c1"], "the interrupted attach still holds a lease")
        let inside = await addresses(container, "eth0")
        XCTAssertEqual(inside, [], "the half-plumbed container kept its interface")
        let ports = try await containerPorts()
        XCTAssertEqual(ports, [], "the half-plumbed container's host end is still on the bridge")
        let (healthy, output) = await doctorPasses()
        XCTAssertTrue(healthy, output)
        // The owner can attach again from scratch.
        let again = try await cluster.attachContainer(host: 1, 1, createNamespace: false)
        let after = await addresses(container, "eth0")
        XCTAssertEqual(after, ["\(again)/16"])
    }

    func testAnAgentKilledWhileProbingLeaksNoLease() async throws {
        try await cluster.startCoordinator()
        let agent = try await cluster.startAgent(1, extraArguments: Self.slowProbeArguments)
        let container = cluster.containerNamespace(host: 1, 1)
        try await lab.addNamespace(container)
        let cluster = self.cluster!
        let attaching = Task { try? await cluster.attachContainer(host: 1, 1, createNamespace: false) }
        let leased = try await eventually(.seconds(30)) { try await self.leaseAddresses()["h1-c1"] != nil }
        XCTAssertTrue(leased, "the attach never got a lease")
        agent.kill9()
        _ = await attaching.value

        try await cluster.startAgent(1, createHost: false, extraArguments: Self.slowProbeArguments)
        let owners = try await leaseAddresses()
        XCTAssertNil(owners["h1-c1"], "the lease of the interrupted probe leaked")
        let (healthy, output) = await doctorPasses()
        XCTAssertTrue(healthy, output)
    }

    /// A probe long enough to kill the agent in the middle of it, and no pool, so the attach probes itself.
    static let slowProbeArguments = [
        "--pool-size", "0", "--probe-count", "3", "--probe-interval", "1",
        "--probe-wait", "2",
    ]

    func eventually(_ timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}
