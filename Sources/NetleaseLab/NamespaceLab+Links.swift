import Foundation
import HostNetwork
import NetleaseCore

/// Building blocks for tests that make their own topology out of a lab's namespaces instead of the underlay bridge
/// of `addHost`: named namespaces, point-to-point veth pairs, a host network running inside a namespace.
extension NamespaceLab {
    /// Creates namespace `nl<id>-<role>` with loopback up and returns its name; `destroy()` deletes it.
    @discardableResult
    public func addNamespace(role: String) async throws -> String {
        let name = "nl\(id)-\(role)"
        try await addNamespace(name)
        return name
    }

    /// Joins namespaces `a` and `b` with a veth pair, gives each end its address (CIDR form) and sets both up.
    ///
    /// The pair is created from inside `a` with its peer placed straight into `b`, so no end ever sits in the root
    /// namespace: deleting either namespace removes the pair, and a failure half-way leaves nothing behind there.
    public func connect(
        _ a: String,
        _ aAddress: String,
        _ b: String,
        _ bAddress: String,
        names: (String, String) = ("u0", "u0")
    ) async throws {
        try await run(a, ["ip", "link", "add", names.0, "type", "veth", "peer", "name", names.1, "netns", b])
        try await run(a, ["ip", "addr", "add", aAddress, "dev", names.0])
        try await run(b, ["ip", "addr", "add", bAddress, "dev", names.1])
        try await run(a, ["ip", "link", "set", names.0, "up"])
        try await run(b, ["ip", "link", "set", names.1, "up"])
    }

    /// `ip -d -j link show` inside `namespace`, keyed by interface name: the kernel's own view, for assertions.
    public func links(in namespace: String) async throws -> [String: [String: Any]] {
        let text = try await run(namespace, ["ip", "-d", "-j", "link", "show"]).stdout
        let array = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] ?? []
        var result: [String: [String: Any]] = [:]
        for link in array {
            if let name = link["ifname"] as? String { result[name] = link }
        }
        return result
    }

    /// A runner for commands inside `namespace` (with `environment`, e.g. a lab Open vSwitch's): handed to a real
    /// `LinuxHostNetwork`, it makes that namespace one host.
    public func commandRunner(in namespace: String, environment: [String: String] = [:]) -> NetnsCommandRunner {
        NetnsCommandRunner(namespace: namespace, environment: environment, base: runner)
    }

    /// Sends echo requests from `namespace` until one is answered or `timeout` passes. The first packets over a
    /// fresh tunnel may be lost while the path is learned (ARP through the mesh, an OVS next-hop lookup), so one lost
    /// echo proves nothing; `ICMPEcho` repeats its request until the deadline.
    public func ping(from namespace: String, to address: IPv4Address, within timeout: Duration) async -> Bool {
        (try? await ICMPEcho(namespace: .named(namespace)).answers(address, within: timeout)) ?? false
    }
}
