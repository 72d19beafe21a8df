import Foundation
import Logging
import NetleaseCore

/// `HostNetworking` on Linux, through `ip`, `bridge`, `ovs-vsctl` and `nsenter` run by a `CommandRunner`.
///
/// Design notes:
/// - Every operation observes the host first (`ip -d -j addr show`, plus the tunnel's forwarding table or OVS
///   state), plans with `NetworkPlanner` (pure) and runs only the commands of the plan. A host that already matches
///   sees no changing command; `verify` reports the plan instead of running it.
/// - What an operation creates is recorded per network; `teardown` removes exactly that. The record lives in memory:
///   an agent that restarts adopts links by their deterministic names (ensure fixes them in place) but will not
///   tear down what an earlier process created.
/// - Operations are serialized by a gate held across all their awaits (an actor alone would let two operations
///   interleave between observing and changing).
/// - Runs with whatever privileges the runner has (CAP_NET_ADMIN for `ip`, CAP_SYS_ADMIN for `nsenter`).
public actor LinuxHostNetwork: HostNetworking {
    let runner: any CommandRunner
    let logger: Logger
    let namespaceGuard: NamespaceGuard
    let gate = SerialGate()
    var created: [String: [CreatedResource]] = [:]

    static let listLinks = ["ip", "-d", "-j", "addr", "show"]

    /// - Parameters:
    ///   - runner: runs the commands (inject `RecordingCommandRunner` in tests).
    ///   - logger: every change is logged at info level with what was wrong.
    public init(runner: any CommandRunner, logger: Logger = Logger(label: "netlease.hostnetwork")) {
        self.init(runner: runner, logger: logger, namespaceGuard: .system)
    }

    /// With another namespace check (tests of command sequences, whose namespaces do not exist).
    init(
        runner: any CommandRunner,
        logger: Logger = Logger(label: "netlease.hostnetwork"),
        namespaceGuard: NamespaceGuard
    ) {
        self.runner = runner
        self.logger = logger
        self.namespaceGuard = namespaceGuard
    }

    /// What this instance created for `network` and has not removed, oldest first.
    public func createdResources(network: String) -> [CreatedResource] { created[network] ?? [] }

    // MARK: network

    public func ensureNetwork(_ config: HostNetworkConfig) async throws -> NetworkReport {
        try config.validate()
        await gate.acquire()
        defer { gate.release() }
        let snapshot = try await observe(config)
        let planner = NetworkPlanner(config: config, snapshot: snapshot)
        let steps = planner.plan()
        let blocking = steps.filter(\.blocking)
        if !blocking.isEmpty {
            throw HostNetworkError(
                .conflict,
                "network '\(config.network)': \(blocking.map(\.problem).joined(separator: "; ")); not changing it"
            )
        }
        var changes: [String] = []
        for step in steps where step.argv != nil {
            try await apply(step, network: config.network)
            changes.append(step.problem)
        }
        for step in steps where step.argv == nil {
            logger.warning(
                "host network problem",
                metadata: ["network": "\(config.network)", "problem": "\(step.problem)"]
            )
        }
        return NetworkReport(bridge: config.bridge, mtu: planner.mtu, changes: changes)
    }

    public func verify(_ config: HostNetworkConfig) async throws -> [VerifyFailure] {
        try config.validate()
        await gate.acquire()
        defer { gate.release() }
        let snapshot = try await observe(config)
        return NetworkPlanner(config: config, snapshot: snapshot).plan().map(\.failure)
    }

    public nonisolated func reachable(_ address: IPv4Address) async -> Bool {
        (try? await runner.run(["ping", "-c", "1", "-W", "1", "-q", address.description])) != nil
    }

    public func teardown(network: String) async throws {
        await gate.acquire()
        defer { gate.release() }
        let resources = created[network] ?? []
        guard !resources.isEmpty else { return }
        let links = HostSnapshot(links: try await observeLinks(Self.listLinks)).links
        let createdLinks = Set(
            resources.compactMap { resource -> String? in
                if case .link(let name) = resource { return name }
                return nil
            }
        )
        let createdSwitches = Set(
            resources.compactMap { resource -> String? in
                if case .ovsBridge(let name) = resource { return name }
                return nil
            }
        )
        // Order: OVS ports, OVS bridges, forwarding entries and addresses on links we keep, then links newest first
        // (container veths and tunnels before the bridge). Removals subsumed by a removal that follows are skipped.
        var plan: [(CreatedResource, [String])] = []
        for resource in resources {
            if case .ovsPort(let bridge, let port) = resource, !createdSwitches.contains(bridge) {
                plan.append((resource, NetworkPlanner.ovsVsctl + ["--if-exists", "del-port", bridge, port]))
            }
        }
        for resource in resources {
            if case .ovsBridge(let name) = resource {
                plan.append((resource, NetworkPlanner.ovsVsctl + ["--if-exists", "del-br", name]))
            }
        }
        for resource in resources {
            switch resource {
            case .fdb(let device, let destination) where !createdLinks.contains(device) && links[device] != nil:
                plan.append(
                    (resource, ["bridge", "fdb", "del", HostSnapshot.zeroMAC, "dev", device, "dst", "\(destination)"])
                )
            case .address(let link, let cidr) where !createdLinks.contains(link) && links[link] != nil:
                plan.append((resource, ["ip", "addr", "del", cidr, "dev", link]))
            default:
                break
            }
        }
        for resource in resources.reversed() {
            if case .link(let name) = resource, links[name] != nil {
                plan.append((resource, ["ip", "link", "del", name]))
            }
        }
        var failures: [HostNetworkError] = []
        var kept: [CreatedResource] = []
        var deletedLinks: Set<String> = []
        for (resource, argv) in plan {
            // Deleting one end of a veth pair deletes the other; skip links that went with an earlier deletion.
            if case .link(let name) = resource, deletedLinks.contains(name) { continue }
            do {
                _ = try await runner.run(argv)
                logger.info("removed", metadata: ["network": "\(network)", "what": "\(resource)"])
                if case .link(let name) = resource {
                    deletedLinks.insert(name)
                    if let peer = links[name]?.peerName { deletedLinks.insert(peer) }
                }
            } catch let error as HostNetworkError {
                failures.append(error)
                kept.append(resource)
            }
        }
        created[network] = kept.isEmpty ? nil : kept
        if let first = failures.first {
            var error = first
            error.message = "teardown of '\(network)' left \(kept.count) resource(s): " + first.message
            throw error
        }
    }

    // MARK: observation

    func observe(_ config: HostNetworkConfig) async throws -> HostSnapshot {
        var snapshot = HostSnapshot(links: try await observeLinks(Self.listLinks))
        switch config.tunnel {
        case .vxlan:
            let device = InterfaceNames.vxlan(vni: config.vni)
            if snapshot.links[device]?.kind == "vxlan" {
                let argv = ["bridge", "-j", "fdb", "show", "dev", device]
                snapshot.fdbDestinations = try HostSnapshot.parseFDBDestinations(
                    try await runner.run(argv).stdout,
                    command: argv
                )
            }
        case .gre:
            break
        case .ovsGre:
            snapshot.ovs = try await observeOVS(bridge: config.ovsBridge)
        }
        return snapshot
    }

    func observeLinks(_ argv: [String]) async throws -> [ObservedLink] {
        try ObservedLink.parseList(try await runner.run(argv).stdout, command: argv)
    }

    private func observeOVS(bridge: String) async throws -> OVSSnapshot {
        let vsctl = NetworkPlanner.ovsVsctl
        let bridges: [String]
        do {
            bridges = OVSSnapshot.parseNames(try await runner.run(vsctl + ["list-br"]).stdout)
        } catch var error as HostNetworkError where error.code == .commandFailed {
            if error.stderr.contains("database connection failed") {
                error.message = "Open vSwitch is not running (ovsdb-server unreachable): " + error.message
            }
            throw error
        }
        guard bridges.contains(bridge) else { return OVSSnapshot(bridgeExists: false, bridges: Set(bridges)) }
        var snapshot = OVSSnapshot(bridgeExists: true, bridges: Set(bridges))
        snapshot.datapathType = try await runner.run(vsctl + ["get", "bridge", bridge, "datapath_type"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "\"")))
        snapshot.ports = Set(OVSSnapshot.parseNames(try await runner.run(vsctl + ["list-ports", bridge]).stdout))
        let find = vsctl + ["--format=json", "--columns=name,options", "find", "interface", "type=gre"]
        snapshot.greRemotes = try OVSSnapshot.parseGREInterfaces(try await runner.run(find).stdout, command: find)
        return snapshot
    }

    // MARK: changes

    func apply(_ step: PlannedStep, network: String) async throws {
        guard let argv = step.argv else { return }
        logger.info(
            "changing host network",
            metadata: ["network": "\(network)", "problem": "\(step.problem)"]
        )
        do {
            _ = try await runner.run(argv)
        } catch let error as HostNetworkError where Self.isMissingGretap(argv, error) {
            throw HostNetworkError(
                .missingKernelSupport,
                "this kernel cannot create gretap devices: it lacks GRE support (module ip_gre, CONFIG_NET_IPGRE); "
                    + "use tunnel kind vxlan, or ovs-gre with a userspace OVS bridge. `\(ShellQuote.join(argv))` "
                    + "said: \(error.stderr)",
                command: argv,
                status: error.status,
                stderr: error.stderr
            )
        }
        if let removed = step.removes { created[network]?.removeAll { $0 == removed } }
        if let added = step.creates, created[network]?.contains(added) != true {
            created[network, default: []].append(added)
        }
    }

    /// `ip link add … type gretap` fails with "Unknown device type" (no rtnl_link_ops for gretap: ip_gre not built
    /// or loadable) or "Operation not supported".
    private static func isMissingGretap(_ argv: [String], _ error: HostNetworkError) -> Bool {
        guard error.code == .commandFailed, argv.starts(with: ["ip", "link", "add"]), argv.contains("gretap") else {
            return false
        }
        let said = error.stderr.lowercased()
        return said.contains("unknown device type") || said.contains("not supported")
    }
}
