import Foundation
import HostNetwork
import NetleaseCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real, throwaway PostgreSQL server for tests: `initdb` into a fresh temporary directory, then `pg_ctl start` on
/// a free loopback port with its unix socket in the same directory. One server per test process (started on first
/// use, stopped and removed at exit); each test makes its own database with `makeDatabase()` and drops it after.
///
/// Design notes:
/// - PostgreSQL refuses to run as root. As root every server command runs through `runuser -u postgres`, and the
///   directory is handed to `postgres` first; as another user the commands run directly.
/// - The directory is `<tmp>/netlease-pg-<pid>-<random>` and records the test process's pid in `owner.pid`. A run
///   that crashed (no atexit) leaves its server running: the next start finds such directories whose owner process
///   is gone, stops their server (`pg_ctl -m immediate`) and removes them, so stale servers never pile up and never
///   hold a port or a socket the new run needs.
/// - The server keeps PostgreSQL's durable defaults (`fsync=on`, `synchronous_commit=on`): the store refuses
///   anything less, and the durability tests mean what they say. Only `initdb` skips its own final sync (`-N`).
public final class PostgresTestServer: Sendable {
    /// Why no server could be had; tests skip with it (or fail under NETLEASE_REQUIRE_NETNS=1).
    public struct Unavailable: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    public let directory: String
    public let port: Int
    public let socketDirectory: String
    let binaries: String
    let runAsPostgres: Bool
    /// The server's command-line options (`pg_ctl -o`): port, socket directory, listen address, limits, TLS.
    let options: String
    private let databases = Mutex<Set<String>>([])
    private let stopped = Mutex(false)

    public var dataDirectory: String { directory + "/data" }
    public var logFile: String { directory + "/server.log" }
    /// The superuser `initdb` made; trust authentication on loopback and on the socket.
    public let user = "postgres"

    /// The server of this test process, started on first use.
    public static func shared() throws -> PostgresTestServer {
        try sharedServer.withLock { state in
            switch state {
            case .some(.success(let server)): return server
            case .some(.failure(let error)): throw error
            case .none:
                do {
                    let server = try PostgresTestServer.start()
                    state = .success(server)
                    atexit { PostgresTestServer.stopShared() }
                    return server
                } catch {
                    state = .failure(error)
                    throw error
                }
            }
        }
    }

    /// `shared()` for a test. Without PostgreSQL the test is skipped with `skip`'s error — or, under
    /// NETLEASE_REQUIRE_NETNS=1 (CI, where nothing may skip), fails through `fail` and throws. (This module does not
    /// link XCTest; callers pass `XCTSkip` and `XCTFail`.)
    public static func sharedForTest(
        fail: (String) -> Void,
        skip: (String) -> any Error
    ) throws -> PostgresTestServer {
        do {
            return try shared()
        } catch let error as Unavailable {
            if ProcessInfo.processInfo.environment["NETLEASE_REQUIRE_NETNS"] == "1" {
                fail("NETLEASE_REQUIRE_NETNS=1 but PostgreSQL cannot run: \(error.reason)")
                throw error
            }
            throw skip("PostgreSQL is not available (install the Debian package postgresql): \(error.reason)")
        }
    }

    private static let sharedServer = Mutex<Result<PostgresTestServer, Error>?>(nil)

    private static func stopShared() {
        if case .success(let server)? = sharedServer.withLock({ $0 }) { server.stop() }
    }

    /// Where PostgreSQL's programs are: NETLEASE_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin.
    public static func binaryDirectory() throws -> String {
        if let bin = ProcessInfo.processInfo.environment["NETLEASE_PG_BIN"] { return bin }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw Unavailable(
            reason: "PostgreSQL is not installed (no \(root)/<version>/bin/initdb); "
                + "install the Debian package postgresql"
        )
    }

    /// The server's self-signed certificate (for `localhost` and 127.0.0.1) when started with `tls`.
    public var certificateFile: String { directory + "/server.crt" }

    /// Starts a new server of its own (most tests want `shared()`); `stop()` removes it.
    /// - Parameter tls: TLS with a self-signed certificate (`certificateFile`), and TCP connections without TLS
    ///   refused (the unix socket stays open to `sql`).
    public static func start(tls: Bool = false) throws -> PostgresTestServer {
        let binaries = try binaryDirectory()
        removeStaleServers(binaries: binaries)
        let runAsPostgres = geteuid() == 0
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-pg-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())").path
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        do {
            try Data("\(getpid())\n".utf8).write(to: URL(fileURLWithPath: directory + "/owner.pid"))
            if runAsPostgres {
                guard let account = getpwnam("postgres") else {
                    throw Unavailable(
                        reason: "running as root but there is no 'postgres' user to run PostgreSQL as; "
                            + "install the Debian package postgresql"
                    )
                }
                guard chown(directory, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                    let why = String(cString: strerror(errno))
                    throw Unavailable(reason: "cannot hand \(directory) to postgres: \(why)")
                }
            }
            try run(
                binaries + "/initdb",
                [
                    "-D", directory + "/data", "-A", "trust", "-U", "postgres", "-N",
                    "-E", "UTF8", "--locale=C",
                ],
                asPostgres: runAsPostgres
            )
            var tlsOptions = ""
            if tls {
                try makeCertificate(in: directory, asPostgres: runAsPostgres)
                try Data("local all all trust\nhostssl all all 127.0.0.1/32 trust\n".utf8)
                    .write(to: URL(fileURLWithPath: directory + "/data/pg_hba.conf"))
                tlsOptions =
                    " -c ssl=on -c ssl_cert_file=\(directory)/server.crt"
                    + " -c ssl_key_file=\(directory)/server.key"
            }
            var lastError: Error?
            // A free port can be taken between finding it and the server binding it: try a few.
            for _ in 0..<3 {
                let port = try LoopbackPort.free()
                let server = PostgresTestServer(
                    directory: directory,
                    port: port,
                    binaries: binaries,
                    runAsPostgres: runAsPostgres,
                    options: "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c max_connections=200 "
                        + "-c shared_buffers=16MB" + tlsOptions
                )
                do {
                    try server.startServer()
                    return server
                } catch {
                    lastError = error
                }
            }
            throw lastError ?? Unavailable(reason: "PostgreSQL did not start")
        } catch {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            _ = try? run(
                binaries + "/pg_ctl",
                ["-D", directory + "/data", "-m", "immediate", "-w", "stop"],
                asPostgres: runAsPostgres
            )
            try? FileManager.default.removeItem(atPath: directory)
            if let error = error as? Unavailable { throw error }
            throw Unavailable(reason: "PostgreSQL test server did not start: \(error)\n\(log)")
        }
    }

    private init(directory: String, port: Int, binaries: String, runAsPostgres: Bool, options: String) {
        self.directory = directory
        self.port = port
        self.socketDirectory = directory
        self.binaries = binaries
        self.runAsPostgres = runAsPostgres
        self.options = options
    }

    /// How `pg_ctl stop` ends the server (`-m`).
    public enum ShutdownMode: String, Sendable {
        /// Every session is ended and the server shuts down cleanly, with a checkpoint.
        case fast
        /// The server quits at once, without a checkpoint, as in a crash; the next start recovers from the WAL.
        case immediate
    }

    /// Stops the server but keeps its data, so that `startServer()` brings the same databases back: what a
    /// database restart (or crash, with `.immediate`) looks like to its clients. Waits until it has stopped.
    public func stopServer(mode: ShutdownMode) throws {
        try Self.run(
            binaries + "/pg_ctl",
            ["-D", dataDirectory, "-m", mode.rawValue, "-w", "-t", "60", "stop"],
            asPostgres: runAsPostgres
        )
    }

    /// Starts the server on its port and socket (again, after `stopServer`); returns once it accepts connections.
    public func startServer() throws {
        try Self.run(
            binaries + "/pg_ctl",
            ["-D", dataDirectory, "-w", "-t", "60", "-l", logFile, "-o", options, "start"],
            asPostgres: runAsPostgres
        )
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    public func url(database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// A new, empty database with a unique name.
    public func makeDatabase(prefix: String = "t") throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())"
        try sql("CREATE DATABASE \(name)")
        databases.withLock { _ = $0.insert(name) }
        return name
    }

    /// Drops a database made by `makeDatabase`, closing connections still open to it.
    public func dropDatabase(_ name: String) {
        _ = try? sql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        databases.withLock { _ = $0.remove(name) }
    }

    /// Separates columns in `sql`'s output (ASCII unit separator: never in test values).
    public static let columnSeparator: Character = "\u{1F}"

    /// Runs SQL with psql as the superuser (in `database`, default `postgres`); returns psql's unaligned output:
    /// one line per row, columns separated by `columnSeparator`.
    @discardableResult
    public func sql(_ statement: String, database: String = "postgres") throws -> String {
        let output = try Self.run(
            binaries + "/psql",
            [
                "-X", "-q", "-A", "-t", "-F", String(Self.columnSeparator), "-v", "ON_ERROR_STOP=1", "-h",
                socketDirectory, "-p", String(port), "-U", user, "-d", database, "-c", statement,
            ],
            asPostgres: false
        )
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `sql`'s rows, split into columns.
    public func rows(_ statement: String, database: String) throws -> [[String]] {
        try sql(statement, database: database).split(separator: "\n").map {
            $0.split(separator: Self.columnSeparator, omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// Stops the server (fast shutdown) and removes its directory. Idempotent.
    public func stop() {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        if (try? Self.run(
            binaries + "/pg_ctl",
            ["-D", dataDirectory, "-m", "fast", "-w", "-t", "30", "stop"],
            asPostgres: runAsPostgres
        )) == nil {
            _ = try? Self.run(
                binaries + "/pg_ctl",
                ["-D", dataDirectory, "-m", "immediate", "-w", "stop"],
                asPostgres: runAsPostgres
            )
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: internals

    /// Runs a PostgreSQL program to completion (as `postgres` when asked), throwing with its output on failure.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], asPostgres: Bool) throws -> String {
        let (program, argv) =
            asPostgres
            ? ("/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments) : (executable, arguments)
        let output = try ChildProcess.run(executable: program, arguments: argv, timeout: .seconds(120))
        let stdout = String(decoding: output.stdout, as: UTF8.self)
        guard output.termination == .exited(0), !output.timedOut else {
            let stderr = String(decoding: output.stderr, as: UTF8.self)
            throw Unavailable(
                reason: "\(([executable] + arguments).joined(separator: " ")) failed "
                    + "(\(output.termination)): \(stderr)\(stdout)"
            )
        }
        return stdout
    }

    /// A self-signed certificate and key (readable by the server only) in `directory`.
    static func makeCertificate(in directory: String, asPostgres: Bool) throws {
        try run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/server.key", "-out",
                directory + "/server.crt", "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            asPostgres: asPostgres
        )
        guard chmod(directory + "/server.key", 0o600) == 0 else {
            throw Unavailable(reason: "cannot protect the test server's key: \(String(cString: strerror(errno)))")
        }
    }

    /// Stops and removes servers of earlier test processes that are gone (crashed or killed before atexit).
    static func removeStaleServers(binaries: String) {
        let temporary = FileManager.default.temporaryDirectory.path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
        for entry in entries where entry.hasPrefix("netlease-pg-") {
            let directory = temporary + "/" + entry
            guard let text = try? String(contentsOfFile: directory + "/owner.pid", encoding: .utf8),
                let owner = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                owner != getpid(), kill(owner, 0) != 0, errno == ESRCH
            else { continue }
            if FileManager.default.fileExists(atPath: directory + "/data/postmaster.pid") {
                _ = try? run(
                    binaries + "/pg_ctl",
                    ["-D", directory + "/data", "-m", "immediate", "-w", "stop"],
                    asPostgres: geteuid() == 0
                )
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
