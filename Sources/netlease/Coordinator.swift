import ArgumentParser
import Foundation
import Logging
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseStore
import ServiceLifecycle
import NetleaseTransport

extension Netlease {
    struct Coordinator: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the coordinator: the one owner of every address, answering the line protocol over TCP.",
            discussion: """
                On first start it creates DIR (mode 0700), the lease database DIR/netlease.db and the cluster \
                secret DIR/cluster-secret (mode 0600): give it to agents and admins. DIR/reader-secret (mode 0600) \
                authenticates read-only clients: they may list, every change is refused with 'forbidden'. Secret \
                files readable by group or others are refused at start. The first line \
                printed on stdout once ready is 'netlease coordinator listening on HOST:PORT'. SIGTERM or SIGINT \
                stops it gracefully. With --tls-cert, --tls-key and --tls-ca every connection must complete a TLS \
                handshake presenting a client certificate signed by that CA; the protocol and the secrets then \
                work inside TLS unchanged.
                """)

        /// Where the coordinator keeps its database and secrets unless told otherwise; admin commands look for the
        /// cluster secret there too.
        static let defaultDataDirectory = "./netlease-data"

        @Option(help: ArgumentHelp("Address and port to listen on (port 0 picks a free one).", valueName: "addr:port"))
        var listen = Endpoint(
            host: CoordinatorConfiguration.defaults.host, port: CoordinatorConfiguration.defaults.port
        ).description

        @Option(help: ArgumentHelp("Data directory for the database and the cluster secret.", valueName: "dir"))
        var data = Coordinator.defaultDataDirectory

        @Flag(help: "Accept requests without authentication (logs a warning; for throwaway test clusters only).")
        var insecure = false

        @Option(help: "Maximum simultaneous connections; more are refused with 'overloaded'.")
        var maxConnections = CoordinatorConfiguration.defaults.maxConnections

        @Option(help: ArgumentHelp("Close connections that send nothing for this long.", valueName: "seconds"))
        var idleTimeout = CoordinatorConfiguration.defaults.idleTimeout.components.seconds

        @Option(help: ArgumentHelp("Close connections that leave a started line unfinished this long.",
                                   valueName: "seconds"))
        var lineTimeout = CoordinatorConfiguration.defaults.lineTimeout.components.seconds

        @Option(help: ArgumentHelp(
            "Most requests committed together in one durable transaction (1 disables group commit).",
            valueName: "n"))
        var maxBatch = SQLiteLeaseStore.defaultMaxBatch

        @Option(help: ArgumentHelp(
            "PEM certificate (chain) the coordinator presents; turns on TLS with client certificates "
                + "(needs --tls-key and --tls-ca).",
            valueName: "file"))
        var tlsCert: String?

        @Option(help: ArgumentHelp("PEM private key of --tls-cert.", valueName: "file"))
        var tlsKey: String?

        @Option(help: ArgumentHelp(
            "PEM CA certificate: clients must present a certificate signed by it, or the handshake is refused.",
            valueName: "file"))
        var tlsCa: String?

        @Option(help: ArgumentHelp(
            "Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
        var logLevel = "info"

        func validate() throws {
            _ = try tlsSettings(cert: tlsCert, key: tlsKey, ca: tlsCa)
            guard maxBatch > 0 else { throw ValidationError("--max-batch must be positive") }
            guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
            guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be positive") }
            guard lineTimeout > 0 else { throw ValidationError("--line-timeout must be positive") }
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("unknown --log-level '\(logLevel)'")
            }
        }

        func run() async throws {
            MemoryTrimmer.limitArenas(to: 2)
            let level = Logger.Level(rawValue: logLevel) ?? .info
            LogSetup.bootstrap(level)
            let logger = Logger(label: "netlease.coordinator")
            try await reportingErrors {
                let endpoint = try Endpoint(parsing: listen)
                let tls = try tlsSettings(cert: tlsCert, key: tlsKey, ca: tlsCa)
                // Read the TLS files before anything is created: a bad file stops the start with its name.
                try tls?.validate(asServer: true)
                try FileManager.default.createDirectory(
                    atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                var secrets: (secret: ClusterSecret, reader: ClusterSecret)?
                if insecure {
                    logger.warning("--insecure: every client may change state without authentication")
                } else {
                    secrets = try NetleaseCoordinator.Coordinator.loadOrCreateSecrets(in: data, logger: logger)
                }
                let store = try SQLiteLeaseStore(
                    directory: data, maxBatch: maxBatch, logger: Logger(label: "netlease.store"))
                defer { store.close() }
                logger.info("opened lease store", metadata: ["path": "\(store.path)", "store-id": "\(store.storeID)"])
                let configuration = CoordinatorConfiguration(
                    host: endpoint.host, port: endpoint.port, secret: secrets?.secret, readerSecret: secrets?.reader,
                    maxConnections: maxConnections, idleTimeout: .seconds(idleTimeout),
                    lineTimeout: .seconds(lineTimeout), tls: tls)
                let coordinator = NetleaseCoordinator.Coordinator(
                    configuration: configuration, store: store, logger: logger
                ) { address in
                    let shown = address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "\(address)"
                    // Written unbuffered: scripts wait for this line before they connect.
                    FileHandle.standardOutput.write(Data("netlease coordinator listening on \(shown)\n".utf8))
                }
                let group = ServiceGroup(
                    configuration: .init(
                        services: [.init(service: coordinator)], gracefulShutdownSignals: [.sigterm, .sigint],
                        logger: logger))
                try await group.run()
            }
        }
    }
}
