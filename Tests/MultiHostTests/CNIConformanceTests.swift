import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import NetleaseTesting
import XCTest

/// `netlease-cni` against the CNI spec with a real agent: every command and error path run as a runtime runs it
/// (environment, configuration on stdin, in the host's network namespace), alone and under Debian's `bridge` plugin,
/// which plumbs a real container namespace.
final class CNIConformanceTests: LabTestCase {
    private var pluginDirectory: String!

    override func setUp() async throws {
        try await super.setUp()
        // Before the lab is used: a test that stops here leaves only the lab's directory, which tearDown removes.
        guard FileManager.default.isExecutableFile(atPath: Self.bridgePlugin) else {
            try missingCapability("\(Self.bridgePlugin) is missing: install Debian's containernetworking-plugins")
        }
        pluginDirectory = lab.directory + "/cni-bin"
        try FileManager.default.createDirectory(atPath: pluginDirectory, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: pluginDirectory + "/bridge",
            withDestinationPath: Self.bridgePlugin
        )
        try FileManager.default.createSymbolicLink(
            atPath: pluginDirectory + "/netlease-cni",
            withDestinationPath: try Executables.path("netlease-cni")
        )
    }

    /// The coordinator and host 1's agent; `exclude` keeps addresses of `demo` out of the pool.
    private func startHost(exclude: [String] = []) async throws {
        try await cluster.startCoordinator(extraNetworkArguments: exclude.flatMap { ["--exclude", $0] })
        try await cluster.startAgent(1)
    }

    static let bridgePlugin = "/usr/lib/cni/bridge"

    private func missingCapability(_ why: String) throws -> Never {
        if LabRequirement.isRequired {
            XCTFail("NETLEASE_REQUIRE_NETNS=1 but \(why)")
            throw NetleaseError(.unavailable, why)
        }
        throw XCTSkip(why)
    }

    /// Runs plugin `type` (from the lab's CNI_PATH) in host 1's namespace: stdout parsed when it is JSON.
    private func plugin(
        _ type: String,
        _ command: String,
        _ config: [String: Any]?,
        container: String? = nil,
        ifname: String = "eth0",
        extra: [String: String] = [:]
    ) async throws -> (status: Int32, json: [String: Any]?, stdout: String) {
        var environment = ["CNI_COMMAND": command, "CNI_PATH": pluginDirectory!].merging(extra) { $1 }
        if let container {
            environment["CNI_CONTAINERID"] = container
            environment["CNI_NETNS"] = "/var/run/netns/\(container)"
            environment["CNI_IFNAME"] = ifname
        }
        let input = try config.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data("{".utf8)
        let ip = try ProcessCommandRunner().resolve("ip")
        let arguments = ["netns", "exec", lab.hostNamespace(1), pluginDirectory + "/" + type]
        let run = try await Task.detached {
            try ExecutableRun.run(
                ip,
                arguments,
                environment: environment,
                input: input,
                timeout: .seconds(60)
            )
        }.value
        let json = try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        return (run.status, json, run.stdout)
    }

    /// The plugin's own configuration as the `bridge` plugin passes it on: network `podnet` on netlease's `demo`.
    private func config(
        version: String = "1.1.0",
        name: String = "podnet",
        ipam: [String: Any] = [:],
        extra: [String: Any] = [:]
    ) -> [String: Any] {
        let base: [String: Any] = [
            "type": "netlease-cni", "network": "demo", "socket": cluster.socket(host: 1),
            "stateDir": lab.directory + "/h1-state",
        ]
        return [
            "cniVersion": version, "name": name, "type": "bridge",
            "ipam": base.merging(ipam) { $1 },
        ].merging(extra) { $1 }
    }

    private func code(_ run: (status: Int32, json: [String: Any]?, stdout: String)) -> Int? {
        XCTAssertEqual(run.status, 1, run.stdout)
        return run.json?["code"] as? Int
    }

    /// Runs `netlease-cni` and asserts it fails with CNI error `expected`.
    private func expect(
        _ expected: Int,
        _ command: String,
        _ config: [String: Any]?,
        container: String? = nil,
        ifname: String = "eth0",
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        let run = try await plugin("netlease-cni", command, config, container: container, ifname: ifname)
        XCTAssertEqual(run.status, 1, run.stdout, file: file, line: line)
        XCTAssertEqual(run.json?["code"] as? Int, expected, "\(command): \(run.stdout)", file: file, line: line)
    }

    /// Active leases by owner, as the coordinator lists them.
    private func owners(state: String = "active") async throws -> [String: String] {
        try await leaseAddresses(state: state)
    }

    func testThePluginAloneAnswersEveryCommandAndErrorAsTheSpecSays() async throws {
        try await startHost()
        // VERSION
        let version = try await plugin("netlease-cni", "VERSION", ["cniVersion": "1.1.0"])
        XCTAssertEqual(version.json?["supportedVersions"] as? [String], ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        XCTAssertEqual(version.json?["cniVersion"] as? String, "1.1.0")

        // ADD: an address of the subnet, host 1's bridge address as gateway, no route nobody configured.
        try await lab.addNamespace("\(lab.hostNamespace(1))-c1")
        let c1 = "\(lab.hostNamespace(1))-c1"
        let add = try await plugin("netlease-cni", "ADD", config(), container: c1)
        XCTAssertEqual(add.status, 0, add.stdout)
        let ips = try XCTUnwrap(add.json?["ips"] as? [[String: Any]])
        XCTAssertEqual(ips.count, 1)
        let address = try XCTUnwrap(ips.first?["address"] as? String)
        XCTAssertTrue(cluster.subnet.contains(try XCTUnwrap(IPv4Address(address.prefix { $0 != "/" }))), address)
        XCTAssertTrue(address.hasSuffix("/16"), address)
        XCTAssertEqual(ips.first?["gateway"] as? String, "172.30.0.1")
        XCTAssertEqual((add.json?["routes"] as? [Any])?.count, 0, "a route nobody configured")
        let afterAdd = try await owners()
        XCTAssertEqual(afterAdd["cni:podnet/\(c1)/eth0"], String(address.prefix { $0 != "/" }))
        let again = try await plugin("netlease-cni", "ADD", config(), container: c1)
        XCTAssertEqual((again.json?["ips"] as? [[String: Any]])?.first?["address"] as? String, address, "idempotent")

        // A requested address (args.cni.ips), and one that is held already.
        let wanted = "172.30.9.9"
        let c2 = "\(lab.hostNamespace(1))-c2"
        try await lab.addNamespace(c2)
        let requested = try await plugin(
            "netlease-cni",
            "ADD",
            config(extra: ["args": ["cni": ["ips": [wanted]]]]),
            container: c2
        )
        XCTAssertEqual((requested.json?["ips"] as? [[String: Any]])?.first?["address"] as? String, "\(wanted)/16")
        let taken = try await plugin(
            "netlease-cni",
            "ADD",
            config(extra: ["runtimeConfig": ["ips": [wanted]]]),
            container: c2,
            ifname: "eth1"
        )
        XCTAssertEqual(code(taken), 100)
        XCTAssertTrue((taken.json?["msg"] as? String ?? "").hasPrefix("conflict: "), taken.stdout)

        // CHECK compares prevResult with the lease.
        let previous = try XCTUnwrap(add.json)
        let check = try await plugin("netlease-cni", "CHECK", config(extra: ["prevResult": previous]), container: c1)
        XCTAssertEqual(check.status, 0, check.stdout)
        let wrong = try await plugin(
            "netlease-cni",
            "CHECK",
            config(extra: ["prevResult": ["cniVersion": "1.1.0", "ips": [["address": "\(wanted)/16"]]]]),
            container: c1
        )
        XCTAssertEqual(code(wrong), 100)

        // STATUS: ready.
        let status = try await plugin("netlease-cni", "STATUS", config())
        XCTAssertEqual(status.status, 0, status.stdout)
        XCTAssertEqual(status.stdout, "")

        // GC keeps listed attachments, other CNI networks' and `attach`'s leases, releases the rest of podnet's.
        try await lab.addNamespace("\(lab.hostNamespace(1))-c3")
        let other = try await plugin(
            "netlease-cni",
            "ADD",
            config(name: "othernet"),
            container: "\(lab.hostNamespace(1))-c3"
        )
        XCTAssertEqual(other.status, 0, other.stdout)
        let attached = try await cluster.attachContainer(host: 1, 9)
        let valid: [[String: String]] = [["containerID": c1, "ifname": "eth0"]]
        let gc = try await plugin("netlease-cni", "GC", config(extra: ["cni.dev/valid-attachments": valid]))
        XCTAssertEqual(gc.status, 0, gc.stdout)
        let active = try await owners()
        XCTAssertNotNil(active["cni:podnet/\(c1)/eth0"])
        XCTAssertNil(active["cni:podnet/\(c2)/eth0"], "GC kept a stale attachment")
        XCTAssertNotNil(active["cni:othernet/\(lab.hostNamespace(1))-c3/eth0"], "GC touched another CNI network")
        XCTAssertEqual(active["h1-c9"], attached.description, "GC touched an attach lease")
        let cooling = try await owners(state: "cooldown")
        XCTAssertEqual(cooling["cni:podnet/\(c2)/eth0"], wanted)

        // DEL twice; then CHECK fails; DEL for a network the agent does not serve succeeds.
        for _ in 0..<2 {
            let del = try await plugin("netlease-cni", "DEL", config(extra: ["prevResult": previous]), container: c1)
            XCTAssertEqual(del.status, 0, del.stdout)
            XCTAssertEqual(del.stdout, "")
        }
        let afterDel = try await owners()
        XCTAssertNil(afterDel["cni:podnet/\(c1)/eth0"])
        let checkGone = try await plugin(
            "netlease-cni",
            "CHECK",
            config(extra: ["prevResult": previous]),
            container: c1
        )
        XCTAssertEqual(code(checkGone), 100)
        let unserved = try await plugin("netlease-cni", "DEL", config(ipam: ["network": "nope"]), container: c1)
        XCTAssertEqual(unserved.status, 0, unserved.stdout)
        try await expect(7, "ADD", config(ipam: ["network": "nope"]), container: c1)

        // Bad configuration, unsupported version, invalid environment.
        try await expect(6, "ADD", nil, container: c1)
        try await expect(7, "ADD", ["cniVersion": 1, "name": "podnet"], container: c1)
        try await expect(1, "ADD", config(version: "0.2.0"), container: c1)
        try await expect(1, "GC", config(version: "1.0.0"))
        try await expect(4, "ADD", config(), container: c1, ifname: "eth0:1")

        // The agent stopped: ADD and CHECK try later, STATUS is 51. DEL reads the agent's records: c1's lease is
        // gone (success), othernet's is held (try later, so it is not leaked); without records, prevResult decides.
        cluster.stopAgent(1)
        try await expect(11, "ADD", config(), container: c1)
        try await expect(11, "CHECK", config(extra: ["prevResult": previous]), container: c1)
        try await expect(51, "STATUS", config())
        let gone = try await plugin("netlease-cni", "DEL", config(extra: ["prevResult": previous]), container: c1)
        XCTAssertEqual(gone.status, 0, gone.stdout)
        let othernet = config(name: "othernet", extra: ["prevResult": other.json ?? [:]])
        try await expect(11, "DEL", othernet, container: "\(lab.hostNamespace(1))-c3")
        let unrecorded = config(ipam: ["stateDir": lab.directory + "/absent"])
        let nothing = try await plugin("netlease-cni", "DEL", unrecorded, container: c1)
        XCTAssertEqual(nothing.status, 0, nothing.stdout)
        try await expect(11, "DEL", unrecorded.merging(["prevResult": previous]) { $1 }, container: c1)
    }

    /// Debian's `bridge` plugin with the conflist `netlease cni-config` prints: a real veth in a container
    /// namespace, the leased address, the bridge's MTU, the default route; CHECK and DEL through the bridge plugin.
    func testTheBridgePluginPlumbsAContainerWithTheConflistOfCNIConfig() async throws {
        try await startHost()
        let text = try await lab.run(
            lab.hostNamespace(1),
            [cluster.binary, "cni-config", "demo", "--socket", cluster.socket(host: 1)]
        ).stdout
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(list["name"] as? String, "demo")
        var bridge = try XCTUnwrap((list["plugins"] as? [[String: Any]])?.first)
        XCTAssertEqual(bridge["bridge"] as? String, "nl-demo")
        XCTAssertEqual(bridge["mtu"] as? Int, 1450)
        let ipam = try XCTUnwrap(bridge["ipam"] as? [String: Any])
        XCTAssertEqual(ipam["socket"] as? String, cluster.socket(host: 1))
        XCTAssertEqual(ipam["stateDir"] as? String, lab.directory + "/h1-state")
        bridge["cniVersion"] = list["cniVersion"]
        bridge["name"] = list["name"]

        let version = try await plugin("bridge", "VERSION", ["cniVersion": "1.0.0"])
        XCTAssertEqual(version.status, 0, version.stdout)

        let container = "\(lab.hostNamespace(1))-b1"
        try await lab.addNamespace(container)
        let add = try await plugin("bridge", "ADD", bridge, container: container)
        XCTAssertEqual(add.status, 0, add.stdout)
        let address = try XCTUnwrap((add.json?["ips"] as? [[String: Any]])?.first?["address"] as? String)
        XCTAssertEqual(add.json?["routes"] as? [[String: String]], [["dst": "0.0.0.0/0"]])
        let leased = String(address.prefix { $0 != "/" })
        let leases = try await owners()
        XCTAssertEqual(leases["cni:demo/\(container)/eth0"], leased)

        let links = try await lab.links(in: container)
        XCTAssertEqual(links["eth0"]?["mtu"] as? Int, 1450)
        let addresses = try await lab.run(container, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
        XCTAssertTrue(addresses.contains(" \(address) "), addresses)
        let route = try await lab.run(container, ["ip", "route", "show", "default"]).stdout
        XCTAssertTrue(route.hasPrefix("default via 172.30.0.1 dev eth0"), route)
        // Across hosts: a container attached on host 2 answers.
        try await cluster.startAgent(2)
        let remote = try await cluster.attachContainer(host: 2, 1)
        let unreachable = await unreachable(from: container, [IPv4Address(172, 30, 0, 1), remote])
        XCTAssertEqual(unreachable, [])

        let previous = try XCTUnwrap(add.json)
        var checked = bridge
        checked["prevResult"] = previous
        let check = try await plugin("bridge", "CHECK", checked, container: container)
        XCTAssertEqual(check.status, 0, check.stdout)
        for _ in 0..<2 {
            let del = try await plugin("bridge", "DEL", checked, container: container)
            XCTAssertEqual(del.status, 0, del.stdout)
        }
        let active = try await owners()
        XCTAssertNil(active["cni:demo/\(container)/eth0"])
        let cooling = try await owners(state: "cooldown")
        XCTAssertEqual(cooling["cni:demo/\(container)/eth0"], leased)
        let left = try await lab.links(in: container)
        XCTAssertNil(left["eth0"], "the bridge plugin left the veth")

        // The plugin's errors come back through the bridge plugin unchanged.
        var broken = bridge
        broken["ipam"] = ["type": "netlease-cni", "socket": cluster.socket(host: 1)]
        let refused = try await plugin("bridge", "ADD", broken, container: container)
        XCTAssertEqual(code(refused), 7, refused.stdout)
        var old = bridge
        old["cniVersion"] = "0.2.0"
        // A fresh namespace: the bridge plugin (1.1.1) leaves its veth behind when its IPAM plugin fails an ADD.
        let second = "\(lab.hostNamespace(1))-b2"
        try await lab.addNamespace(second)
        let incompatible = try await plugin("bridge", "ADD", old, container: second)
        XCTAssertEqual(code(incompatible), 1, incompatible.stdout)
    }

    /// No free address (everything but host 1's bridge address excluded): STATUS is 50, ADD tries later (11).
    func testAnExhaustedPoolIsStatus50AndAddTriesLater() async throws {
        try await startHost(exclude: ["172.30.0.2-172.30.255.254"])
        let status = try await plugin("netlease-cni", "STATUS", config())
        XCTAssertEqual(code(status), 50)
        XCTAssertEqual(
            status.json?["msg"] as? String,
            "network 'demo' has no free address (see 'netlease network show demo')"
        )
        let container = "\(lab.hostNamespace(1))-c1"
        try await lab.addNamespace(container)
        let add = try await plugin("netlease-cni", "ADD", config(), container: container)
        XCTAssertEqual(code(add), 11)
        XCTAssertTrue((add.json?["msg"] as? String ?? "").hasPrefix("pool-exhausted: "), add.stdout)
    }
}
