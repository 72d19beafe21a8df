import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import XCTest

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
    private func json(_ namespace: String, _ arguments: [String]) async throws -> [[String: Any]] {
        let text = try await lab.run(namespace, ["ip", "-j"] + arguments).stdout
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
    }

    /// Interfaces enslaved to the network's bridge on host 1 other than the tunnel: the containers' host ends.
    private func containerPorts() async throws -> [String] {
        try await json(hostNamespace, ["-d", "link", "show", "master", "nl-demo"])
            .filter { (($0["linkinfo"] as? [String: Any])?["info_kind"] as? String) == "veth" }
            .compactMap { $0["ifname"] as? String }
    }

    /// IPv4 addresses (CIDR) on `ifname` inside `namespace`; empty when the interface is missing.
    private func addresses(_ namespace: String, _ ifname: String) async -> [String] {
        let links = (try? await json(namespace, ["addr", "show", "dev", ifname])) ?? []
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
        try await cluster.startAgent(1)
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

    private func eventually(_ timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}
