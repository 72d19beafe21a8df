import Foundation
import HostNetwork
import NetleaseTesting
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Invariant 8's files, through the built `netlease` executable: what the coordinator generates, and every reader of
/// a secret file — coordinator, agent, admin CLI — refusing one that group or others can read.
final class SecretFileTests: XCTestCase {
    private var scratch: String!
    private var coordinators: [CoordinatorProcess] = []
    private var children: [ChildProcess] = []

    override func setUpWithError() throws {
        scratch =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-secret-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        for child in children where child.isRunning { _ = child.stop(grace: .seconds(5)) }
        for coordinator in coordinators { coordinator.cleanUp() }
        children = []
        coordinators = []
        try? FileManager.default.removeItem(atPath: scratch)
    }

    private func binary() throws -> String {
        do { return try Executables.path() } catch { try missingCapability("\(error)") }
    }

    private func path(_ name: String) -> String { (scratch as NSString).appendingPathComponent(name) }

    private func start(_ name: String, _ arguments: [String] = []) async throws -> CoordinatorProcess {
        let coordinator = try await CoordinatorProcess.start(
            binary: try binary(),
            directory: path(name),
            arguments: arguments
        )
        coordinators.append(coordinator)
        return coordinator
    }

    private func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    private func contents(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    private func isSecret(_ text: String) -> Bool {
        text.count == 65 && text.hasSuffix("\n") && text.dropLast().allSatisfy { "0123456789abcdef".contains($0) }
    }

    // MARK: generated

    func testGeneratedSecretsAreOwnerOnly64HexCharactersAndDifferentPerDataDirectory() async throws {
        let first = try await start("a")
        let second = try await start("b")
        var seen: Set<String> = []
        for coordinator in [first, second] {
            XCTAssertEqual(mode(coordinator.directory), 0o700, "data directory \(coordinator.directory)")
            for file in [coordinator.secretFile, coordinator.readerSecretFile] {
                XCTAssertEqual(mode(file), 0o600, "\(file)")
                let text = try contents(file)
                XCTAssertTrue(isSecret(text), "\(file) is not 64 lowercase hex characters and a newline: '\(text)'")
                seen.insert(text)
                // Never logged.
                XCTAssertFalse(coordinator.log.contains(text.dropLast()), "the log shows \(file)")
            }
        }
        XCTAssertEqual(seen.count, 4, "two data directories share a secret, or a cluster and reader secret agree")

        // A restart reads the same files and changes neither.
        let before = try contents(first.secretFile)
        XCTAssertEqual(first.stop(), 0)
        let again = try await start("a")
        XCTAssertEqual(try contents(again.secretFile), before)
        XCTAssertEqual(mode(again.secretFile), 0o600)
    }

    // MARK: refused

    func testTheCoordinatorRefusesSecretFilesReadableByGroupOrOthers() async throws {
        let binary = try binary()
        let data = try await start("data")
        XCTAssertEqual(data.stop(), 0)
        for file in [data.secretFile, data.readerSecretFile] {
            for loose: mode_t in [0o640, 0o644] {
                XCTAssertEqual(chmod(file, loose), 0)
                // A coordinator that accepted the file would keep running: the run's deadline fails the test then.
                let run = try ExecutableRun.run(
                    binary,
                    ["coordinator", "--listen", "127.0.0.1:0", "--data", data.directory],
                    timeout: .seconds(30)
                )
                let octal = String(loose, radix: 8)
                XCTAssertEqual(run.status, 1, "\(file) mode \(octal): \(run.stderr)")
                XCTAssertFalse(run.stdout.contains("listening"), "started with \(file) mode \(octal)")
                XCTAssertTrue(
                    run.stderr.contains("error: bad-request: secret file \(file) has mode \(octal)"),
                    run.stderr
                )
                XCTAssertTrue(run.stderr.contains("chmod 600 \(file)"), run.stderr)
                XCTAssertEqual(mode(file), loose, "the coordinator changed the file's mode itself")
            }
            XCTAssertEqual(chmod(file, 0o600), 0)
        }
        let restarted = try await start("data")
        XCTAssertTrue(restarted.isRunning, "owner-only secrets again: the coordinator starts")
    }

    /// The agent reads its `--secret-file` before anything else: with a loose mode it exits without connecting to
    /// the coordinator (a listener of the test's own, which a control run shows the agent does connect to) and
    /// without creating its socket's directory or its state directory.
    func testTheAgentRefusesALooseSecretFileBeforeTouchingTheNetwork() throws {
        let binary = try binary()
        let listener = try TCPListener()
        defer { listener.close() }
        let secret = path("agent-secret")
        try Data((String(repeating: "ab", count: 32) + "\n").utf8).write(to: URL(fileURLWithPath: secret))
        func arguments(_ tag: String) -> [String] {
            [
                "agent", "--coordinator", "127.0.0.1:\(listener.port)", "--secret-file", secret, "--host", "h1",
                "--underlay", "10.99.0.1", "--network", "prod", "--socket", path("\(tag)-run/agent.sock"),
                "--state-dir", path("\(tag)-state"), "--log-level", "warning",
            ]
        }

        for loose: mode_t in [0o640, 0o644] {
            XCTAssertEqual(chmod(secret, loose), 0)
            let tag = "loose\(String(loose, radix: 8))"
            let run = try ExecutableRun.run(binary, arguments(tag), timeout: .seconds(30))
            XCTAssertEqual(run.status, 1, run.stderr)
            XCTAssertTrue(
                run.stderr.contains("error: bad-request: secret file \(secret) has mode \(String(loose, radix: 8))"),
                run.stderr
            )
            XCTAssertEqual(listener.acceptedSoFar(), 0, "the agent connected with a refused secret file")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("\(tag)-run")), "socket directory created")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("\(tag)-state")), "state directory created")
        }

        // Control: with mode 0600 the same agent does connect, so the check above could fail. The listener never
        // greets, so the agent gets no further than waiting for the greeting; it is stopped then.
        XCTAssertEqual(chmod(secret, 0o600), 0)
        let agent = try ChildProcess(
            executable: binary,
            arguments: arguments("control"),
            stdout: .null,
            stderr: .file(path("control.log"), append: false)
        )
        children.append(agent)
        let deadline = ContinuousClock.now + .seconds(30)
        while listener.acceptedSoFar() == 0, agent.isRunning, ContinuousClock.now < deadline {
            usleep(50_000)
        }
        XCTAssertGreaterThan(
            listener.acceptedSoFar(),
            0,
            "the control agent never connected: \((try? contents(path("control.log"))) ?? "")"
        )
    }

    func testInsecureLogsItsWarningAndCreatesNoSecret() async throws {
        let coordinator = try await start("insecure", ["--insecure"])
        XCTAssertTrue(
            coordinator.log.contains("--insecure: every client may change state without authentication"),
            coordinator.log
        )
        XCTAssertFalse(FileManager.default.fileExists(atPath: coordinator.secretFile))
        let run = try ExecutableRun.run(
            try binary(),
            [
                "network", "create", "open", "--subnet", "10.98.0.0/24", "--coordinator",
                coordinator.address,
            ]
        )
        XCTAssertEqual(run.status, 0, "an unauthenticated change was refused under --insecure: \(run.stderr)")
    }

    /// The admin CLI holds the cluster secret to the same rule as the coordinator and the agent, wherever it finds
    /// the file: --secret-file, NETLEASE_SECRET_FILE, or ./netlease-data/cluster-secret.
    func testTheAdminCLIRefusesASecretFileReadableByOthers() async throws {
        let binary = try binary()
        let coordinator = try await start("cli")
        let workdir = path("work")
        try FileManager.default.createDirectory(atPath: workdir + "/netlease-data", withIntermediateDirectories: true)
        let copy = path("copy-secret")
        let local = workdir + "/netlease-data/cluster-secret"
        for file in [copy, local] {
            try FileManager.default.copyItem(atPath: coordinator.secretFile, toPath: file)
        }
        let list = ["network", "list", "--coordinator", coordinator.address]
        let ways: [(String, [String], [String: String], String)] = [
            ("--secret-file", list + ["--secret-file", copy], [:], copy),
            ("NETLEASE_SECRET_FILE", list, ["NETLEASE_SECRET_FILE": copy], copy),
            ("./netlease-data/cluster-secret", list, [:], "./netlease-data/cluster-secret"),
        ]
        for (way, arguments, environment, shown) in ways {
            let file = shown == copy ? copy : local
            for loose: mode_t in [0o640, 0o644, 0o604] {
                XCTAssertEqual(chmod(file, loose), 0)
                let run = try ExecutableRun.run(binary, arguments, environment: environment, directory: workdir)
                let octal = String(loose, radix: 8)
                XCTAssertEqual(run.status, 1, "\(way) mode \(octal) was accepted: \(run.stdout)")
                XCTAssertTrue(
                    run.stderr.contains("error: bad-request: secret file \(shown) has mode \(octal)"),
                    "\(way): \(run.stderr)"
                )
            }
            XCTAssertEqual(chmod(file, 0o600), 0)
            let run = try ExecutableRun.run(binary, arguments, environment: environment, directory: workdir)
            XCTAssertEqual(run.status, 0, "\(way) with mode 600: \(run.stderr)")
        }
    }
}

/// A TCP listener on 127.0.0.1 port 0 that accepts (and immediately closes) every connection when asked how many
/// arrived; it never greets.
final class TCPListener {
    let descriptor: Int32
    let port: Int
    private var accepted = 0

    init() throws {
        // Non-blocking, so counting never waits for a connection that does not come.
        let descriptor = socket(
            AF_INET,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
            0
        )
        guard descriptor >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(descriptor, $0, length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            Glibc.close(descriptor)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Accepts every pending connection without waiting; the number accepted since the listener was made.
    func acceptedSoFar() -> Int {
        while true {
            let connection = accept(descriptor, nil, nil)
            guard connection >= 0 else { return accepted }
            Glibc.close(connection)
            accepted += 1
        }
    }

    func close() { Glibc.close(descriptor) }
}
