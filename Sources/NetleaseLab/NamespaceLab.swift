import Foundation
import HostNetwork
import Logging
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// A cluster on one machine: an underlay network namespace with a bridge, one namespace per host joined to it by a
/// veth pair, container namespaces, and processes started inside them. Used by `netlease demo` and the multi-host
/// tests.
///
/// Design notes:
/// - Every name carries a random lab id, reserved in `LabRegistry` (with this process as its owner), so parallel labs
///   never collide, and `destroy()` removes exactly what this lab created: its processes first, then its namespaces
///   (deleting a namespace deletes the links in it). What a crashed run left behind, `LabSweeper` removes once its
///   owner is gone.
/// - Addresses live only inside the lab's namespaces: the underlay is 10.<a>.<b>.0/24 with the host index as last
///   octet; the root namespace gets no address and no route.
/// - Waiting is event-driven: a started process is awaited on the line it prints when ready, with a deadline.
public final class NamespaceLab: @unchecked Sendable {
    // @unchecked: mutable lists are guarded by `lock`; everything else is set in init.
    public let id: String
    public let underlayNamespace: String
    public let underlaySubnet: IPv4Subnet
    public let directory: String
    let runner: any CommandRunner
    private let lock = NSLock()
    private var namespaces: [String] = []
    private var processes: [LabProcess] = []
    private var cleanups: [@Sendable () -> Void] = []
    /// Whether `LabRegistry` records this lab (false where there is no registry: nothing then sweeps it).
    private let registered: Bool

    public init(runner: any CommandRunner = ProcessCommandRunner(), directory: String? = nil) throws {
        var id = ""
        var reservation = LabRegistry.Reservation.taken
        for _ in 0..<64 where reservation == .taken {
            id = String(UInt32.random(in: 0x1000...0xFFFF), radix: 16)
            let labDirectory =
                directory
                ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("netlease-lab-\(id)")
            reservation = LabRegistry.reserve(id: id, labDirectory: labDirectory)
        }
        guard reservation != .taken else { throw NetleaseError(.unavailable, "no free lab id in the lab registry") }
        registered = reservation == .reserved
        self.id = id
        underlayNamespace = "nl\(id)-ul"
        let second = UInt8.random(in: 200...250)
        let third = UInt8.random(in: 1...254)
        underlaySubnet = IPv4Subnet(network: IPv4Address(10, second, third, 0), prefix: 24)!
        self.runner = runner
        self.directory = directory ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("netlease-lab-\(id)")
        do {
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        } catch {
            if registered { LabRegistry.release(id: id) }
            throw error
        }
    }

    /// Whether this process can build labs: root, `ip netns` working.
    public static func capabilityProblem(runner: any CommandRunner = ProcessCommandRunner()) async -> String? {
        guard geteuid() == 0 else { return "needs root (network namespaces, veth pairs, bridges)" }
        // Named after this process, so a sweeper can tell a probe left by a crash from one still in use.
        let owner = LabRegistry.Owner.current
        let probe = "\(LabSweeper.probePrefix)\(owner.pid)-\(owner.startTime)-\(UInt16.random(in: 0...UInt16.max))"
        do {
            _ = try await runner.run(["ip", "netns", "add", probe])
            _ = try await runner.run(["ip", "netns", "del", probe])
            return nil
        } catch {
            return "cannot create network namespaces: \(error)"
        }
    }

    /// The underlay address of host `index` (1-based); the underlay namespace itself has .254.
    public func underlayAddress(host index: Int) -> IPv4Address {
        IPv4Address(underlaySubnet.network.value + UInt32(index))
    }

    public var serviceAddress: IPv4Address { IPv4Address(underlaySubnet.network.value + 254) }

    public func hostNamespace(_ index: Int) -> String { "nl\(id)-h\(index)" }

    /// Creates the underlay namespace with its bridge and the service address (where the coordinator listens).
    public func createUnderlay() async throws {
        try await addNamespace(underlayNamespace)
        try await run(underlayNamespace, ["ip", "link", "add", "ul0", "type", "bridge"])
        try await run(underlayNamespace, ["ip", "link", "set", "ul0", "up"])
        try await run(underlayNamespace, ["ip", "addr", "add", "\(serviceAddress)/24", "dev", "ul0"])
    }

    /// Creates host `index`: a namespace whose `underlay0` is joined to the underlay bridge. Returns its namespace.
    @discardableResult
    public func addHost(_ index: Int) async throws -> String {
        let namespace = hostNamespace(index)
        try await addNamespace(namespace)
        let outer = underlayPeerLink(host: index)
        // The inner end is created straight in the host's namespace, so deleting that namespace removes the pair
        // even when moving the outer end below fails.
        _ = try await runner.run([
            "ip", "link", "add", outer, "type", "veth", "peer", "name", "underlay0", "netns", namespace,
        ])
        _ = try await runner.run(["ip", "link", "set", outer, "netns", underlayNamespace])
        try await run(underlayNamespace, ["ip", "link", "set", outer, "master", "ul0", "up"])
        try await run(namespace, ["ip", "addr", "add", "\(underlayAddress(host: index))/24", "dev", "underlay0"])
        try await run(namespace, ["ip", "link", "set", "underlay0", "up"])
        return namespace
    }

    /// The underlay namespace's end of host `index`'s underlay veth.
    public func underlayPeerLink(host index: Int) -> String { "ul\(id)h\(index)" }

    /// Takes a host's underlay link down or up: the host is cut off from the coordinator and its peers.
    public func setUnderlay(host index: Int, up: Bool) async throws {
        try await run(hostNamespace(index), ["ip", "link", "set", "underlay0", up ? "up" : "down"])
    }

    /// Creates an empty namespace (a container's), loopback up.
    public func addNamespace(_ name: String) async throws {
        _ = try await runner.run(["ip", "netns", "add", name])
        lock.withLock { namespaces.append(name) }
        try await run(name, ["ip", "link", "set", "lo", "up"])
    }

    /// Runs a command inside a namespace and returns its output; throws on failure.
    @discardableResult
    public func run(
        _ namespace: String,
        _ argv: [String],
        environment: [String: String] = [:]
    ) async throws
        -> CommandResult
    {
        let env = environment.isEmpty ? [] : ["env"] + environment.keys.sorted().map { "\($0)=\(environment[$0]!)" }
        return try await runner.run(["ip", "netns", "exec", namespace] + env + argv)
    }

    /// Whether `address` answers ICMP echo sent from `namespace` within a second (native raw-socket echo, so the lab
    /// needs no `ping` executable). False also when no echo can be sent at all (not root).
    public func ping(from namespace: String, to address: IPv4Address) async -> Bool {
        await ping(from: namespace, to: address, within: .seconds(1))
    }

    /// Starts `argv` inside `namespace`; its stdout is read line by line, stderr goes to a file in the lab.
    public func spawn(_ namespace: String, _ argv: [String], name: String) throws -> LabProcess {
        let process = try LabProcess(
            argv: ["ip", "netns", "exec", namespace] + argv,
            name: name,
            logPath: (directory as NSString).appendingPathComponent("\(name).log")
        )
        lock.withLock { processes.append(process) }
        return process
    }

    /// Registers work for `destroy()`, run after the lab's processes stop and before its namespaces go.
    public func onDestroy(_ cleanup: @escaping @Sendable () -> Void) {
        lock.withLock { cleanups.append(cleanup) }
    }

    /// Stops every process (SIGTERM, then SIGKILL after a grace period) and deletes every namespace of the lab.
    public func destroy(keepFiles: Bool = false) async {
        let (processes, namespaces, cleanups) = lock.withLock { (self.processes, self.namespaces, self.cleanups) }
        // Stopping blocks (up to the grace period per process): on a thread of its own, not the cooperative pool.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                for process in processes { process.stop(grace: .seconds(5)) }
                continuation.resume()
            }
        }
        for cleanup in cleanups.reversed() { cleanup() }
        var remaining: [String] = []
        for namespace in namespaces.reversed() where (try? await runner.run(["ip", "netns", "del", namespace])) == nil {
            remaining.append(namespace)
        }
        lock.withLock {
            self.processes = []
            self.namespaces = remaining
            self.cleanups = []
        }
        // A namespace that could not be deleted keeps the record, so a later sweep retries once this process ends.
        if registered && remaining.isEmpty { LabRegistry.release(id: id) }
        if !keepFiles { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Leaves the lab running after this process ends (`netlease demo --keep`): no sweeper removes it.
    public func keep() {
        if registered { LabRegistry.markKept(id: id) }
    }

    /// The namespaces this lab made and `destroy()` has not deleted yet.
    public var createdNamespaces: [String] { lock.withLock { namespaces } }

    /// The processes this lab started and `destroy()` has not stopped yet.
    public var startedProcesses: [LabProcess] { lock.withLock { processes } }
}
