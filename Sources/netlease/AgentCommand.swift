import ArgumentParser
import Foundation
import HostNetwork
import Logging
import NetleaseAgent
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseWire
import ServiceLifecycle
import NetleaseTransport

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
                """)

        @Option(help: ArgumentHelp("Coordinator addresses, comma-separated, tried in turn.", valueName: "addr:port,…"))
        var coordinator = AgentConfiguration.defaultCoordinators.map(\.description).joined(separator: ",")
        @Option(help: ArgumentHelp("File holding the cluster secret.", valueName: "path")) var secretFile: String?
        @Option(help: ArgumentHelp(
            "PEM certificate this host presents to coordinators started with --tls-*; needs --tls-key and --tls-ca.",
            valueName: "file"))
        var tlsCert: String?
        @Option(help: ArgumentHelp("PEM private key of --tls-cert.", valueName: "file")) var tlsKey: String?
        @Option(help: ArgumentHelp("PEM CA certificate that must have signed the coordinators' certificates.",
                                   valueName: "file"))
        var tlsCa: String?
        @Option(help: ArgumentHelp(
            "Name every coordinator's certificate must carry as a DNS or IP subjectAltName "
                + "(default: any certificate the CA signed is accepted).",
            valueName: "name"))
        var tlsServerName: String?
        @Option(help: "This host's name in the cluster.") var host: String
        @Option(help: ArgumentHelp("This host's underlay address: the tunnel endpoint peers send to.", valueName: "ip"))
        var underlay: String
        @Option(help: ArgumentHelp("A network this host serves (repeatable).", valueName: "name")) var network: [String]
        @Option(help: ArgumentHelp("Local API socket.", valueName: "path"))
        var socket = AgentConfiguration.defaultSocketPath
        @Option(help: ArgumentHelp("Group allowed to use the socket (mode 0660).", valueName: "group")) var socketGroup: String?
        @Option(help: ArgumentHelp("Where the agent records what it handed out.", valueName: "dir"))
        var stateDir = AgentConfiguration.defaultStateDirectory
        @Flag(help: "On stop, remove the containers' interfaces, tunnels and bridges this agent created.") var teardown = false
        @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
        var logLevel = "info"

        func validate() throws {
            guard !network.isEmpty else { throw ValidationError("give at least one --network") }
            _ = try tlsSettings(cert: tlsCert, key: tlsKey, ca: tlsCa, serverName: tlsServerName)
            guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        }

        func run() async throws {
            let level = Logger.Level(rawValue: logLevel) ?? .info
            LogSetup.bootstrap(level)
            let logger = Logger(label: "netlease.agent")
            try await reportingErrors {
                let endpoints = try Endpoint.list(coordinator)
                let underlayAddress = try parseAddress(underlay, field: "--underlay")
                let secret = try secretFile.map { try ClusterSecret.load(at: $0, checkPermissions: true).text }
                let tls = try tlsSettings(cert: tlsCert, key: tlsKey, ca: tlsCa, serverName: tlsServerName)
                // Checked now, not at the first connect: a bad file would otherwise only show as retries.
                try tls?.validate(asServer: false)
                try FileManager.default.createDirectory(
                    atPath: (socket as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let configuration = AgentConfiguration(
                    coordinators: endpoints, secret: secret, host: host, underlay: underlayAddress, networks: network,
                    socketPath: socket, socketGroup: socketGroup, stateDirectory: stateDir, teardownOnStop: teardown,
                    tls: tls)
                let agent = try Agent(
                    configuration: configuration,
                    hostNetwork: LinuxHostNetwork(runner: ProcessCommandRunner()),
                    prober: PacketSocketARPProber(), logger: logger
                ) { path in
                    FileHandle.standardOutput.write(Data("netlease agent ready on \(path)\n".utf8))
                }
                let group = ServiceGroup(configuration: .init(
                    services: [.init(service: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
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
            discussion: "Idempotent for the same --owner: a repeat returns the same address and fixes what differs.")
        @OptionGroup var agent: AgentSocketOptions
        @Option(help: "Network name.") var network: String
        @Option(help: ArgumentHelp("The container's network namespace: a name (ip netns) or a path.", valueName: "name|path"))
        var netns: String
        @Option(help: "Owner id, e.g. the container id.") var owner: String
        @Option(help: "Interface name inside the container.") var ifname = "eth0"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let reply = try await agent.withAgent {
                    try await $0.send(LocalRequest.attach(network: network, owner: owner, netns: netns, ifname: ifname))
                }
                let lease = try WireCodec.lease(from: reply.fields)
                if json {
                    try printJSON(HandoutJSON(lease: LeaseJSON(lease), gateway: reply.fields["gateway"] ?? "",
                                              mtu: Int(reply.fields["mtu"] ?? "") ?? 0, bridge: reply.fields["bridge"] ?? ""))
                } else {
                    print("\(lease.address)/\(lease.prefix)")
                }
            }
        }
    }

    struct Detach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a container's interface and release its address (idempotent).")
        @OptionGroup var agent: AgentSocketOptions
        @Option(help: "Network name.") var network: String
        @Option(help: "Owner id given to attach.") var owner: String

        func run() async throws {
            try await reportingErrors {
                _ = try await agent.withAgent { try await $0.send(LocalRequest.detach(network: network, owner: owner)) }
                print("detached \(owner)")
            }
        }
    }

    struct Doctor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check this host: coordinator session, bridge, tunnel mesh vs live peers, MTUs, leases.",
            discussion: "Exits non-zero when any check fails, naming each failed check.")
        @OptionGroup var agent: AgentSocketOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
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
                    throw NetleaseError(.checkFailed, "\(failed.count) check(s) failed: \(failed.map(\.name).joined(separator: ", "))")
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
