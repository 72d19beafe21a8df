import Foundation
import HostNetwork
import NetleaseCore

/// A running netlease cluster inside a `NamespaceLab`: a coordinator in the underlay namespace, one agent per host
/// namespace, containers attached through the agents. Drives the real `netlease` executable, exactly as an operator
/// would, so the demo and the multi-host tests prove the shipped binary.
public final class LabCluster: @unchecked Sendable {
    // @unchecked: `agents` is guarded by `lock`; the rest is set in init.
    public let lab: NamespaceLab
    public let binary: String
    public let network: String
    public let subnet: IPv4Subnet
    public let coordinatorAddress: String
    public private(set) var coordinator: LabProcess?
    private let lock = NSLock()
    private var agents: [Int: LabProcess] = [:]

    public init(
        lab: NamespaceLab,
        binary: String,
        network: String = "demo",
        subnet: IPv4Subnet = IPv4Subnet("172.30.0.0/16")!
    ) {
        self.lab = lab
        self.binary = binary
        self.network = network
        self.subnet = subnet
        coordinatorAddress = "\(lab.serviceAddress):7420"
    }

    var dataDirectory: String { (lab.directory as NSString).appendingPathComponent("coordinator") }
    /// The cluster secret: the admin's (CLI) only.
    public var secretFile: String { (dataDirectory as NSString).appendingPathComponent("cluster-secret") }
    /// Host `index`'s own credential, as its agent uses it (made by `host credential issue` at its first start).
    public func credentialFile(host index: Int) -> String {
        (lab.directory as NSString).appendingPathComponent("h\(index).credential")
    }
    public func socket(host index: Int) -> String {
        (lab.directory as NSString).appendingPathComponent("h\(index).sock")
    }
    func stateDirectory(host index: Int) -> String {
        (lab.directory as NSString).appendingPathComponent("h\(index)-state")
    }
    public func hostName(_ index: Int) -> String { "host\(index)" }

    /// Underlay, coordinator, network definition.
    public func startCoordinator(tunnel: TunnelKind = .vxlan, extraNetworkArguments: [String] = []) async throws {
        try await lab.createUnderlay()
        let process = try lab.spawn(
            lab.underlayNamespace,
            [binary, "coordinator", "--listen", coordinatorAddress, "--data", dataDirectory, "--log-level", "notice"],
            name: "coordinator"
        )
        coordinator = process
        guard await process.line(containing: "listening on") != nil else {
            throw NetleaseError(.unavailable, "coordinator did not start:\n\(process.log)")
        }
        try await admin(
            ["network", "create", network, "--subnet", subnet.description, "--tunnel", tunnel.rawValue]
                + extraNetworkArguments
        )
    }

    /// Runs an admin command of the CLI against the lab's coordinator; returns its stdout.
    @discardableResult
    public func admin(_ arguments: [String]) async throws -> String {
        try await lab.run(
            lab.underlayNamespace,
            [binary] + arguments + [
                "--coordinator", coordinatorAddress, "--secret-file", secretFile,
            ]
        ).stdout
    }

    /// Creates host `index` (if needed) and starts its agent; returns once its local API is ready.
    @discardableResult
    public func startAgent(
        _ index: Int,
        createHost: Bool = true,
        extraArguments: [String] = [],
        wrapper: [String] = []
    ) async throws -> LabProcess {
        if createHost { try await lab.addHost(index) }
        // Agents get credentials that act only as their host, as in production; never the cluster secret.
        if !FileManager.default.fileExists(atPath: credentialFile(host: index)) {
            try await admin(["host", "credential", "issue", hostName(index), "--out", credentialFile(host: index)])
        }
        let process = try lab.spawn(
            lab.hostNamespace(index),
            wrapper + [
                binary, "agent", "--coordinator", coordinatorAddress, "--secret-file", credentialFile(host: index),
                "--host", hostName(index), "--underlay", lab.underlayAddress(host: index).description,
                "--network", network, "--socket", socket(host: index), "--state-dir", stateDirectory(host: index),
                "--log-level", "notice",
            ] + extraArguments,
            name: "agent-h\(index)-\(UInt16.random(in: 0...UInt16.max))"
        )
        lock.withLock { agents[index] = process }
        guard await process.line(containing: "ready on") != nil else {
            throw NetleaseError(.unavailable, "agent on host \(index) did not become ready:\n\(process.log)")
        }
        return process
    }

    public func agent(_ index: Int) -> LabProcess? { lock.withLock { agents[index] } }

    /// Stops a host's agent with SIGTERM; returns its exit status.
    @discardableResult
    public func stopAgent(_ index: Int) -> Int32? {
        let process = lock.withLock { agents.removeValue(forKey: index) }
        return process?.stop()
    }

    /// Container namespace name for container `number` of host `index`.
    public func containerNamespace(host index: Int, _ number: Int) -> String { "nl\(lab.id)-h\(index)c\(number)" }

    /// Creates a container namespace and attaches it through the host's agent; returns its address.
    public func attachContainer(
        host index: Int,
        _ number: Int,
        createNamespace: Bool = true
    ) async throws
        -> IPv4Address
    {
        let namespace = containerNamespace(host: index, number)
        if createNamespace { try await lab.addNamespace(namespace) }
        let output = try await lab.run(
            lab.hostNamespace(index),
            [
                binary, "attach", "--socket", socket(host: index), "--network", network, "--netns", namespace,
                "--owner", "h\(index)-c\(number)",
            ]
        ).stdout
        let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let address = IPv4Address(text.split(separator: "/").first ?? "") else {
            throw NetleaseError(.internalError, "attach printed '\(text)'")
        }
        return address
    }

    /// Leases as the coordinator lists them (JSON parsed by the caller's needs).
    public func leasesJSON(_ extra: [String] = []) async throws -> [[String: Any]] {
        let text = try await admin(["leases", "--network", network, "--json"] + extra)
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
    }

    public func destroy(keepFiles: Bool = false) async {
        await lab.destroy(keepFiles: keepFiles)
    }
}
