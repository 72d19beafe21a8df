import ArgumentParser
import Foundation
import HostNetwork
import Logging
import NetleaseAgent
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTransport
import NetleaseWire
import ServiceLifecycle

extension Netlease {
    struct AgentCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "agent",
            abstract: "Run a host's agent: join, build the bridge and tunnel mesh, then lease addresses locally.",
            discussion: """
                The local API socket is created only once every named network's bridge and tunnels are configured \
                and verified. The agent keeps the mesh current as hosts join and leave and renews this host's \
                leases with heartbeats. On SIGTERM it stops and leaves the host network and containers working, \
                unless --teardown is given. Needs root (it changes links and opens raw sockets).

                --config FILE reads the coordinators, host, underlay, networks and secret file from FILE, in the \
                KEY=value form of /etc/netlease/agent.env (NETLEASE_COORDINATORS, NETLEASE_HOST, NETLEASE_UNDERLAY, \
                NETLEASE_NETWORKS separated by spaces or commas, NETLEASE_SECRET_FILE: default \
                /etc/netlease/cluster-secret, empty for none). Options given on the command line win over the file.

                It reports ready (the 'ready on' line, READY=1, /readyz) once the socket is open and each network's \
                address pool was filled the first time (one full ARP probe of every address at once, about 6 s; \
                a pool that cannot fill does not hold it back). Run by systemd as a Type=notify service \
                ($NOTIFY_SOCKET set), it sends READY=1 then, a status line at each step, STOPPING=1 when it stops, and WATCHDOG=1 every half \
                $WATCHDOG_USEC while it is healthy.
                """
        )

        static let defaultCoordinator = AgentConfiguration.defaultCoordinators.map(\.description)
            .joined(separator: ",")

        @Option(
            help: ArgumentHelp(
                "Settings file (KEY=value lines, as /etc/netlease/agent.env); see the discussion above.",
                valueName: "file"
            )
        )
        var config: String?
        @Option(
            help: ArgumentHelp(
                "Coordinator addresses, comma-separated, tried in turn (default \(AgentCommand.defaultCoordinator)).",
                valueName: "addr:port,…"
            )
        )
        var coordinator: String?
        @Option(help: ArgumentHelp("File holding the cluster secret.", valueName: "path")) var secretFile: String?
        @OptionGroup var tls: TLSClientOptions<AgentTLSHelp>
        @Option(help: "This host's name in the cluster (required, here or in --config).") var host: String?
        @Option(
            help: ArgumentHelp(
                "This host's underlay address: the tunnel endpoint peers send to (required, here or in --config).",
                valueName: "ip"
            )
        )
        var underlay: String?
        @Option(
            help: ArgumentHelp(
                "A network this host serves (repeatable; at least one, here or in --config).",
                valueName: "name"
            )
        )
        var network: [String] = []
        @Option(help: ArgumentHelp("Local API socket.", valueName: "path"))
        var socket = AgentConfiguration.defaultSocketPath
        @Option(help: ArgumentHelp("Group allowed to use the socket (mode 0660).", valueName: "group")) var socketGroup:
            String?
        @Option(help: ArgumentHelp("Where the agent records what it handed out.", valueName: "dir"))
        var stateDir = AgentConfiguration.defaultStateDirectory
        @Flag(help: "On stop, remove the containers' interfaces, tunnels and bridges this agent created.")
        var teardown = false
        @Option(
            help: ArgumentHelp(
                "Re-verify every network this often (jittered) and repair drift of bridge, tunnels and forwarding "
                    + "entries; 0 turns it off.",
                valueName: "seconds"
            )
        )
        var resync = AgentConfiguration.defaultResyncInterval.components.seconds
        @Option(
            help: ArgumentHelp(
                "Serve Docker's remote IPAM plugin API (driver 'netlease') on this unix socket, e.g. "
                    + "/run/docker/plugins/netlease.sock; see 'netlease docker-network'.",
                valueName: "path"
            )
        )
        var dockerPlugin: String?
        @Option(
            help: ArgumentHelp(
                "ARP probes per address before it is first handed out (RFC 5227: 3).",
                valueName: "n"
            )
        )
        var probeCount = ARPProbeOptions().probes
        @Option(
            help: ArgumentHelp(
                "Seconds between two probes: a random time from this to twice this (RFC 5227: 1 to 2).",
                valueName: "s"
            )
        )
        var probeInterval = 1.0
        @Option(
            help: ArgumentHelp(
                "Seconds to listen for an answer after the last probe (RFC 5227: 2).",
                valueName: "s"
            )
        )
        var probeWait = 2.0
        @Option(
            help: ArgumentHelp(
                "Seconds to listen when a pooled address is re-checked at hand-out.",
                valueName: "s"
            )
        )
        var recheckWait = 0.3
        @Option(
            help: ArgumentHelp(
                "Addresses this host keeps leased and probed ahead of demand per network, so containers need not "
                    + "wait for a full probe; at most a quarter of the network's free addresses shared among its "
                    + "hosts (0: every request probes in full).",
                valueName: "n"
            )
        )
        var poolSize = AgentConfiguration.defaultPoolSize
        @Option(
            help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level")
        )
        var logLevel = "info"
        @Option(help: metricsOptionHelp) var metrics: String?

        @Option(
            help: ArgumentHelp(
                "Log line format: text, json or journal (default: journal when stderr is the journal, else text).",
                valueName: "format"
            )
        )
        var logFormat: LogFormat?

        /// What the agent runs with: the command line over the settings file over the defaults.
        struct Settings: Equatable {
            var coordinators: String
            var secretFile: String?
            var host: String
            var underlay: String
            var networks: [String]
        }

        func settings() throws -> Settings {
            let file = try config.map(AgentConfigFile.load) ?? AgentConfigFile()
            func missing(_ option: String, _ key: String) -> ValidationError {
                ValidationError("give \(option)" + (config == nil ? "" : " (or \(key) in --config)"))
            }
            guard let host = host ?? file.host, !host.isEmpty else { throw missing("--host", "NETLEASE_HOST") }
            guard let underlay = underlay ?? file.underlay, !underlay.isEmpty else {
                throw missing("--underlay", "NETLEASE_UNDERLAY")
            }
            let networks = network.isEmpty ? file.networks ?? [] : network
            guard !networks.isEmpty else { throw missing("at least one --network", "NETLEASE_NETWORKS") }
            // A settings file that names no secret file means the standard one; empty means none.
            let fileSecret = config == nil ? nil : (file.secretFile ?? AgentConfigFile.defaultSecretFile)
            let secret = secretFile ?? fileSecret.flatMap { $0.isEmpty ? nil : $0 }
            return Settings(
                coordinators: coordinator ?? file.coordinators ?? Self.defaultCoordinator,
                secretFile: secret,
                host: host,
                underlay: underlay,
                networks: networks
            )
        }

        func validate() throws {
            try checkValues(try settings())
            if let metrics { _ = try metricsAddress(metrics) }
            _ = try tls.settings()
            guard resync >= 0 else {
                throw ValidationError("--resync \(resync) must be 0 (off) or a number of seconds")
            }
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("unknown --log-level '\(logLevel)'")
            }
            guard (1...10).contains(probeCount) else {
                throw ValidationError("--probe-count \(probeCount) must be 1-10")
            }
            for (name, value) in [
                ("--probe-interval", probeInterval), ("--probe-wait", probeWait),
                ("--recheck-wait", recheckWait),
            ] where !(0...60).contains(value) {
                throw ValidationError("\(name) \(value) must be 0-60 seconds")
            }
            guard (0...256).contains(poolSize) else { throw ValidationError("--pool-size \(poolSize) must be 0-256") }
        }

        /// The probe timing the options describe.
        var probeOptions: (probe: ARPProbeOptions, recheck: ARPProbeOptions) {
            (
                ARPProbeOptions(
                    probes: probeCount,
                    interval: .seconds(probeInterval)...(.seconds(2 * probeInterval)),
                    wait: .seconds(probeWait)
                ),
                ARPProbeOptions(probes: 1, interval: .zero...(.zero), wait: .seconds(recheckWait))
            )
        }

        func run() async throws {
            let level = Logger.Level(rawValue: logLevel) ?? .info
            let format = logFormat ?? LogFormat.detected()
            LogSetup.bootstrap(level, format: format)
            let logger = Logger(label: "netlease.agent")
            try await reportingErrors(style: ErrorReport.Style(format)) {
                let settings = try settings()
                try checkSocketGroup()
                let endpoints = try Endpoint.list(settings.coordinators)
                let underlayAddress = try parseAddress(settings.underlay, field: "--underlay")
                let secret = try settings.secretFile.map {
                    try ClusterSecret.load(at: $0, checkPermissions: true).text
                }
                if let secret { StandardErrorSink.shared.redact(secret) }
                let tls = try self.tls.settings()
                // Checked now, not at the first connect: a bad file would otherwise only show as retries.
                try tls?.validate(asServer: false)
                try FileManager.default.createDirectory(
                    atPath: (socket as NSString).deletingLastPathComponent,
                    withIntermediateDirectories: true
                )
                if let dockerPlugin {
                    try FileManager.default.createDirectory(
                        atPath: (dockerPlugin as NSString).deletingLastPathComponent,
                        withIntermediateDirectories: true
                    )
                }
                let configuration = AgentConfiguration(
                    coordinators: endpoints,
                    secret: secret,
                    host: settings.host,
                    underlay: underlayAddress,
                    networks: settings.networks,
                    socketPath: socket,
                    socketGroup: socketGroup,
                    stateDirectory: stateDir,
                    teardownOnStop: teardown,
                    tls: tls,
                    dockerPluginSocket: dockerPlugin,
                    probe: probeOptions.probe,
                    recheck: probeOptions.recheck,
                    poolSize: poolSize,
                    resyncInterval: resync > 0 ? .seconds(resync) : nil
                )
                // Under systemd (Type=notify): READY=1 with readiness, status lines, STOPPING=1, watchdog pings.
                let notifier = SystemdNotifier()
                let agent = try Agent(
                    configuration: configuration,
                    hostNetwork: LinuxHostNetwork(runner: ProcessCommandRunner()),
                    prober: PacketSocketARPProber(),
                    logger: logger,
                    notifier: notifier
                ) { path in
                    FileHandle.standardOutput.write(Data("netlease agent ready on \(path)\n".utf8))
                }
                let metricsServer = try metrics.map { text in
                    agent.metricsServer(address: try metricsAddress(text)) { address in
                        logger.info("metrics endpoint listening", metadata: ["address": "\(address)"])
                    }
                }
                // The metrics endpoint first, so it stops last; the notify service last, so it stops first: the
                // group stops services in reverse order, so STOPPING=1 is sent first.
                var services: [ServiceGroupConfiguration.ServiceConfiguration] =
                    metricsServer.map {
                        [.init(service: $0)]
                    } ?? []
                services.append(.init(service: agent))
                if let notifier { services.append(.init(service: SystemdNotifyService(notifier: notifier))) }
                let group = ServiceGroup(
                    configuration: .init(
                        services: services,
                        gracefulShutdownSignals: [.sigterm, .sigint],
                        logger: logger
                    )
                )
                try await group.run()
            }
        }
    }

    /// Options of the commands that talk to the local agent.
    struct AgentSocketOptions: ParsableArguments {
        @Option(help: ArgumentHelp("The agent's local API socket.", valueName: "path"))
        var socket = AgentConfiguration.defaultSocketPath

        func withAgent<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
            try await NetleaseConnection.connect(socketPath: socket, body)
        }
    }

    struct Attach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a container an address: lease (ARP-probed), veth pair, address, default route, MTU.",
            discussion: """
                Idempotent for the same --owner: a repeat returns the same address and fixes what differs. The \
                container is named by its network namespace (--netns) or by a process inside it (--pid), e.g. for \
                a container started with 'docker run --network none': \
                --pid "$(docker inspect -f '{{.State.Pid}}' C)". The agent refuses the host's own namespace.
                """
        )
        @OptionGroup var agent: AgentSocketOptions
        @Option(help: "Network name.") var network: String
        @Option(
            help: ArgumentHelp(
                "The container's network namespace: a name (ip netns) or a path.",
                valueName: "name|path"
            )
        )
        var netns: String?
        @Option(
            help: ArgumentHelp(
                "A process inside the container: its network namespace /proc/PID/ns/net is used (instead of --netns).",
                valueName: "pid"
            )
        )
        var pid: Int32?
        @Option(help: "Owner id, e.g. the container id.") var owner: String
        @Option(help: "Interface name inside the container.") var ifname = "eth0"
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            switch (netns, pid) {
            case (nil, nil): throw ValidationError("name the container: --netns NAME|PATH or --pid PID")
            case (.some, .some): throw ValidationError("give --netns or --pid, not both")
            case (nil, .some(let pid)) where pid == 1:
                throw ValidationError(
                    "--pid 1 is the host's init: its namespace is the host's own, which attach never plumbs; give a "
                        + "process inside the container, e.g. --pid \"$(docker inspect -f '{{.State.Pid}}' C)\""
                )
            case (nil, .some(let pid)) where pid < 1: throw ValidationError("--pid \(pid) is not a process id")
            default: break
            }
        }

        /// The namespace as the agent is asked for it.
        var namespace: String { pid.map { "/proc/\($0)/ns/net" } ?? netns ?? "" }

        func run() async throws {
            try await reportingErrors(json: json) {
                let reply = try await agent.withAgent {
                    try await $0.send(
                        LocalRequest.attach(network: network, owner: owner, netns: namespace, ifname: ifname)
                    )
                }
                let lease = try WireCodec.lease(from: reply.fields)
                if json {
                    try printJSON(
                        HandoutJSON(
                            lease: LeaseJSON(lease),
                            gateway: reply.fields["gateway"] ?? "",
                            mtu: Int(reply.fields["mtu"] ?? "") ?? 0,
                            bridge: reply.fields["bridge"] ?? ""
                        )
                    )
                } else {
                    print("\(lease.address)/\(lease.prefix)")
                }
            }
        }
    }

    struct Detach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a container's interface and release its address (idempotent)."
        )
        @OptionGroup var agent: AgentSocketOptions
        @Option(help: "Network name.") var network: String
        @Option(help: "Owner id given to attach.") var owner: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                _ = try await agent.withAgent { try await $0.send(LocalRequest.detach(network: network, owner: owner)) }
                if json { try printJSON(["network": network, "detached": owner]) } else { print("detached \(owner)") }
            }
        }
    }

    struct Doctor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check this host: coordinator session, bridge, tunnel mesh vs live peers, MTUs, leases.",
            discussion: "Exits non-zero when any check fails, naming each failed check."
        )
        @OptionGroup var agent: AgentSocketOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                let reply = try await agent.withAgent { try await $0.send(LocalRequest.doctor) }
                let checks = try reply.records.map(DoctorCheck.init(fields:))
                if json {
                    try printJSON(checks.map { CheckJSON(name: $0.name, ok: $0.ok, detail: $0.detail) })
                } else {
                    var table = TextTable("CHECK", "STATUS", "DETAIL")
                    for check in checks { table.add([check.name, check.ok ? "ok" : "FAIL", check.detail]) }
                    print(table.rendered)
                }
                let failed = checks.filter { !$0.ok }
                if !failed.isEmpty {
                    throw NetleaseError(
                        .checkFailed,
                        "\(failed.count) check(s) failed: \(failed.map(\.name).joined(separator: ", "))"
                    )
                }
            }
        }
    }
}

struct HandoutJSON: Encodable {
    var lease: LeaseJSON
    var gateway: String
    var mtu: Int
    var bridge: String
}

struct CheckJSON: Encodable {
    var name: String
    var ok: Bool
    var detail: String
}
