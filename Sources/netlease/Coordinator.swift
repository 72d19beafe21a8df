import ArgumentParser
import Foundation
import Logging
import NIOCore
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleasePostgresStore
import NetleaseStore
import NetleaseTransport
import ServiceLifecycle

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
                work inside TLS, and the certificate binds what they grant: the cluster secret only with a \
                certificate named by --tls-admin-subject, a host credential only with a certificate naming that \
                host (subject CN or DNS subjectAltName), the reader secret with any. Host credentials ('netlease \
                host credential issue') are kept in the store as salted hashes.

                With --store postgres://USER@HOST:PORT/DATABASE any number of coordinators share one database: one \
                leads, the others stand by (answering only PING, AUTH, QUIT and STATS, refusing the rest, and \
                AUTH with a host credential, with 'not-leader leader=ADDR') and take over within about 4 s when the leader stops. The first \
                coordinator on an empty database creates the secrets in DIR and stores their hashes in the \
                database; every coordinator authenticates against those.
                Run by systemd as a Type=notify service ($NOTIFY_SOCKET set), it sends READY=1 once it accepts \
                connections with its store open, STOPPING=1 when it stops, and WATCHDOG=1 every half \
                $WATCHDOG_USEC while it is healthy.
                """
        )

        /// Where the coordinator keeps its database and secrets unless told otherwise; admin commands look for the
        /// cluster secret there too.
        static let defaultDataDirectory = "./netlease-data"

        @Option(help: ArgumentHelp("Address and port to listen on (port 0 picks a free one).", valueName: "addr:port"))
        var listen = Endpoint(
            host: CoordinatorConfiguration.defaults.host,
            port: CoordinatorConfiguration.defaults.port
        ).description

        @Option(help: ArgumentHelp("Data directory for the database and the cluster secret.", valueName: "dir"))
        var data = Coordinator.defaultDataDirectory

        @Option(
            help: ArgumentHelp(
                "Where leases are kept: 'sqlite' (DIR/netlease.db) or postgres://USER@HOST:PORT/DATABASE"
                    + "[?sslmode=MODE] (several coordinators on one database).",
                valueName: "store"
            )
        )
        var store = "sqlite"

        @Option(
            help: ArgumentHelp(
                "File holding the PostgreSQL password (mode 0600); else PGPASSWORD.",
                valueName: "file"
            )
        )
        var storePasswordFile: String?

        @Option(
            help: ArgumentHelp(
                "Address clients reach this coordinator at, recorded as the leader's (PostgreSQL store; default: "
                    + "--listen).",
                valueName: "addr:port"
            )
        )
        var advertise: String?

        @Flag(help: "Accept requests without authentication (logs a warning; for throwaway test clusters only).")
        var insecure = false

        @Option(help: "Maximum simultaneous connections; more are refused with 'overloaded'.")
        var maxConnections = CoordinatorConfiguration.defaults.maxConnections

        @Option(help: ArgumentHelp("Close connections that send nothing for this long.", valueName: "seconds"))
        var idleTimeout = CoordinatorConfiguration.defaults.idleTimeout.components.seconds

        @Option(
            help: ArgumentHelp(
                "Close connections that leave a started line unfinished this long.",
                valueName: "seconds"
            )
        )
        var lineTimeout = CoordinatorConfiguration.defaults.lineTimeout.components.seconds

        @Option(
            help: ArgumentHelp(
                "Close connections that have not authenticated this long after connecting (PING does not extend it).",
                valueName: "seconds"
            )
        )
        var authTimeout = CoordinatorConfiguration.defaults.authTimeout.components.seconds

        @Option(
            help: ArgumentHelp(
                "Most unauthenticated connections at once; a new one closes the oldest.",
                valueName: "n"
            )
        )
        var maxUnauthenticated = CoordinatorConfiguration.defaults.admission.maxUnauthenticated

        @Option(
            help: ArgumentHelp(
                "Most unauthenticated connections from one source address; a new one closes that source's oldest.",
                valueName: "n"
            )
        )
        var maxUnauthenticatedPerSource = CoordinatorConfiguration.defaults.admission.maxUnauthenticatedPerSource

        @Option(
            help: ArgumentHelp(
                "Most connections authenticated with the reader secret (watchers included); more are refused.",
                valueName: "n"
            )
        )
        var maxReaders = CoordinatorConfiguration.defaults.admission.maxReaders

        @Option(
            help: ArgumentHelp(
                "Most requests committed together in one durable transaction (1 disables group commit).",
                valueName: "n"
            )
        )
        var maxBatch = SQLiteLeaseStore.defaultMaxBatch

        @OptionGroup var tls: TLSFileOptions<CoordinatorTLSHelp>

        @Option(
            help: ArgumentHelp(
                "With --tls-*: a certificate name (subject CN or DNS subjectAltName) whose holder may use the cluster "
                    + "secret; repeat for several. Without it no certificate is an admin's.",
                valueName: "name"
            )
        )
        var tlsAdminSubject: [String] = []

        @Option(
            help: ArgumentHelp(
                "Log level: trace, debug, info, notice, warning, error, critical.",
                valueName: "level"
            )
        )
        var logLevel = "info"

        @Option(help: metricsOptionHelp)
        var metrics: String?

        @Option(
            help: ArgumentHelp(
                "Log line format: text, json or journal (default: journal when stderr is the journal, else text).",
                valueName: "format"
            )
        )
        var logFormat: LogFormat?

        func validate() throws {
            if let metrics { _ = try metricsAddress(metrics) }
            if try tls.settings() == nil && !tlsAdminSubject.isEmpty {
                throw ValidationError("--tls-admin-subject needs --tls-cert, --tls-key and --tls-ca")
            }
            if store != "sqlite" {
                do { _ = try PostgresStoreURL(parsing: store) } catch let error as NetleaseError {
                    throw ValidationError("--store: \(error.message) (or 'sqlite')")
                }
            } else if storePasswordFile != nil || advertise != nil {
                throw ValidationError("--store-password-file and --advertise need --store postgres://…")
            }
            if let advertise { _ = try Endpoint(parsing: advertise) }
            if store != "sqlite", advertise == nil, let listening = try? Endpoint(parsing: listen),
                ["0.0.0.0", "::", ""].contains(listening.host)
            {
                throw ValidationError(
                    "--store postgres://… with --listen on every address needs --advertise HOST:PORT: the address "
                        + "the other coordinators send clients to while this one leads"
                )
            }
            guard maxBatch > 0 else { throw ValidationError("--max-batch must be positive") }
            guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
            guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be positive") }
            guard lineTimeout > 0 else { throw ValidationError("--line-timeout must be positive") }
            guard authTimeout > 0 else { throw ValidationError("--auth-timeout must be positive") }
            var limits = configuration(endpoint: Endpoint(host: "127.0.0.1", port: 0), tls: nil, secrets: nil)
            // Checked as with a secret: only --insecure runs without one, and then the caps do not apply.
            limits.secret = insecure ? nil : ClusterSecret("check")
            if let problem = limits.limitsProblem {
                throw ValidationError(
                    "--max-unauthenticated, --max-unauthenticated-per-source, --max-readers, --max-connections: "
                        + problem
                )
            }
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("unknown --log-level '\(logLevel)'")
            }
        }

        func run() async throws {
            MemoryTrimmer.limitArenas(to: 2)
            let level = Logger.Level(rawValue: logLevel) ?? .info
            let format = logFormat ?? LogFormat.detected()
            LogSetup.bootstrap(level, format: format)
            let logger = Logger(label: "netlease.coordinator")
            // Under systemd (Type=notify): READY=1 once connections are accepted, STOPPING=1, watchdog pings.
            let notifier = SystemdNotifier()
            try await reportingErrors(style: ErrorReport.Style(format)) {
                let endpoint = try Endpoint(parsing: listen)
                let tls = try self.tls.settings()
                // Read the TLS files before anything is created: a bad file stops the start with its name.
                try tls?.validate(asServer: true)
                try FileManager.default.createDirectory(
                    atPath: data,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
                if insecure { logger.warning("--insecure: every client may change state without authentication") }
                if store == "sqlite" {
                    try await runOnSQLite(endpoint: endpoint, tls: tls, notifier: notifier, logger: logger)
                } else {
                    try await runOnPostgres(endpoint: endpoint, tls: tls, notifier: notifier, logger: logger)
                }
            }
        }

        /// One coordinator, its SQLite file in --data, its secrets beside it.
        private func runOnSQLite(
            endpoint: Endpoint,
            tls: TLSSettings?,
            notifier: SystemdNotifier?,
            logger: Logger
        )
            async throws
        {
            let secrets =
                insecure
                ? nil : try NetleaseCoordinator.Coordinator.loadOrCreateSecrets(in: data, logger: logger)
            if let secrets {
                StandardErrorSink.shared.redact(secrets.secret.text)
                StandardErrorSink.shared.redact(secrets.reader.text)
            }
            notifier?.status("opening the lease store in \(data)")
            let metrics = CoordinatorMetrics()
            let store = try SQLiteLeaseStore(
                directory: data,
                maxBatch: maxBatch,
                commitObserver: metrics,
                logger: Logger(label: "netlease.store")
            )
            defer { store.close() }
            logger.info("opened lease store", metadata: ["path": "\(store.path)", "store-id": "\(store.storeID)"])
            let coordinator = makeCoordinator(
                endpoint: endpoint,
                tls: tls,
                secrets: secrets,
                store: store,
                metrics: metrics,
                notifier: notifier,
                logger: logger
            ) { _ in }
            try await runServices(
                try metricsServices(coordinator, logger: logger) + [coordinator],
                notifier: notifier,
                logger: logger
            )
        }

        /// One of several coordinators on the database of --store: standby until it takes the leadership. The
        /// secrets' hashes are in the database; the coordinator that found none stored its own (created in --data
        /// as with SQLite).
        private func runOnPostgres(
            endpoint: Endpoint,
            tls: TLSSettings?,
            notifier: SystemdNotifier?,
            logger: Logger
        ) async throws {
            let url = try PostgresStoreURL(parsing: store).withPassword(file: storePasswordFile)
            let backend = try await PostgresLeadershipBackend.connect(url: url, maxBatch: maxBatch)
            let secrets = insecure ? nil : try await sharedSecrets(backend, logger: logger)
            let gate = LeadershipGate()
            defer { gate.close() }
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let coordinator = makeCoordinator(
                endpoint: endpoint,
                tls: tls,
                secrets: secrets,
                store: gate,
                metrics: CoordinatorMetrics(),
                notifier: notifier,
                logger: logger
            ) { address in
                portContinuation.yield(address.port ?? endpoint.port)
                portContinuation.finish()
            }
            let advertised = try advertise.map { try Endpoint(parsing: $0) }
            let leadership = AfterListening(ports: ports) { port in
                let address = advertised ?? Endpoint(host: endpoint.host, port: port)
                logger.info("using the shared store", metadata: ["store": "\(url)", "advertise": "\(address)"])
                return Leadership(
                    backend: backend,
                    gate: gate,
                    configuration: LeadershipConfiguration(advertise: "\(address)"),
                    closeConnections: { coordinator.closeConnections() }
                )
            }
            try await runServices(
                try metricsServices(coordinator, logger: logger) + [coordinator, leadership],
                notifier: notifier,
                logger: logger
            )
        }

        /// The hashes every coordinator on the database authenticates against, stored from this coordinator's
        /// secret files when the database has none yet.
        private func sharedSecrets(
            _ backend: PostgresLeadershipBackend,
            logger: Logger
        ) async throws
            -> (secret: ClusterSecret, reader: ClusterSecret?)
        {
            var hashes = try await backend.secretHashes()
            if hashes.isEmpty {
                let local = try NetleaseCoordinator.Coordinator.loadOrCreateSecrets(in: data, logger: logger)
                StandardErrorSink.shared.redact(local.secret.text)
                StandardErrorSink.shared.redact(local.reader.text)
                let mine = [
                    PostgresLeadershipBackend.adminRole: SecretHash(hashing: local.secret.text),
                    PostgresLeadershipBackend.readerRole: SecretHash(hashing: local.reader.text),
                ]
                hashes = try await backend.initialiseSecrets(mine)
                if hashes == mine {
                    logger.notice(
                        "stored the hashes of this coordinator's secrets in the database",
                        metadata: ["give agents and admins": "\(data)/\(ClusterSecret.fileName)"]
                    )
                } else {
                    logger.warning(
                        "another coordinator stored the database's secrets first",
                        metadata: ["not authenticating here": "\(data)/\(ClusterSecret.fileName)"]
                    )
                }
            }
            guard let admin = hashes[PostgresLeadershipBackend.adminRole] else {
                throw NetleaseError(.storage, "the database holds no hash of the cluster secret")
            }
            let localPath = (data as NSString).appendingPathComponent(ClusterSecret.fileName)
            if let local = try? ClusterSecret.load(at: localPath, checkPermissions: false), !admin.matches(local.text) {
                logger.warning(
                    "this data directory's cluster secret is not the database's",
                    metadata: ["path": "\(localPath)"]
                )
            }
            let reader = hashes[PostgresLeadershipBackend.readerRole]
            return (
                ClusterSecret(verifiedBy: { admin.matches($0) }),
                reader.map { hash in ClusterSecret(verifiedBy: { hash.matches($0) }) }
            )
        }

        private func makeCoordinator(
            endpoint: Endpoint,
            tls: TLSSettings?,
            secrets: (secret: ClusterSecret, reader: ClusterSecret?)?,
            store: any LeaseStore,
            metrics: CoordinatorMetrics,
            notifier: SystemdNotifier?,
            logger: Logger,
            onListening: @escaping @Sendable (SocketAddress) -> Void
        ) -> NetleaseCoordinator.Coordinator {
            NetleaseCoordinator.Coordinator(
                configuration: configuration(endpoint: endpoint, tls: tls, secrets: secrets),
                store: store,
                metrics: metrics,
                logger: logger
            ) { address in
                onListening(address)
                let shown = address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "\(address)"
                // Written unbuffered: scripts wait for this line before they connect.
                FileHandle.standardOutput.write(Data("netlease coordinator listening on \(shown)\n".utf8))
                notifier?.ready(status: "serving on \(shown)")
            }
        }

        private func configuration(
            endpoint: Endpoint,
            tls: TLSSettings?,
            secrets: (secret: ClusterSecret, reader: ClusterSecret?)?
        ) -> CoordinatorConfiguration {
            CoordinatorConfiguration(
                host: endpoint.host,
                port: endpoint.port,
                secret: secrets?.secret,
                readerSecret: secrets?.reader,
                maxConnections: maxConnections,
                idleTimeout: .seconds(idleTimeout),
                lineTimeout: .seconds(lineTimeout),
                authTimeout: .seconds(authTimeout),
                admission: ConnectionAdmission.Limits(
                    maxUnauthenticated: maxUnauthenticated,
                    maxUnauthenticatedPerSource: maxUnauthenticatedPerSource,
                    maxReaders: maxReaders
                ),
                tls: tls,
                tlsAdminSubjects: Set(tlsAdminSubject)
            )
        }

        /// The metrics endpoint of --metrics, if given. Listed first, so it stops last: /readyz answers 503 while
        /// the coordinator drains.
        private func metricsServices(
            _ coordinator: NetleaseCoordinator.Coordinator,
            logger: Logger
        ) throws
            -> [any Service]
        {
            guard let metrics else { return [] }
            return [
                coordinator.metricsServer(address: try metricsAddress(metrics)) { address in
                    logger.info("metrics endpoint listening", metadata: ["address": "\(address)"])
                }
            ]
        }

        /// Runs `services` until SIGTERM/SIGINT. The notify service goes last: the group stops services in reverse
        /// order, so STOPPING=1 is sent first.
        private func runServices(_ services: [any Service], notifier: SystemdNotifier?, logger: Logger) async throws {
            var all: [ServiceGroupConfiguration.ServiceConfiguration] = services.map { .init(service: $0) }
            if let notifier { all.append(.init(service: SystemdNotifyService(notifier: notifier))) }
            let group = ServiceGroup(
                configuration: .init(services: all, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            )
            try await group.run()
        }
    }

    /// Runs the service `make` builds once the server listens (it needs the bound port).
    struct AfterListening<Wrapped: Service>: Service {
        let ports: AsyncStream<Int>
        let make: @Sendable (Int) -> Wrapped

        func run() async throws {
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { return }
            try await make(port).run()
        }
    }
}
