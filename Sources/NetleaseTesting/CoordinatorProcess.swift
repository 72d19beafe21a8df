import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseTransport

#if canImport(Glibc)
import Glibc
#endif

/// The real `netlease coordinator` executable as a child process on 127.0.0.1 port 0, for tests of what only the
/// shipped binary shows: files it creates, the modes it checks, what it logs, how the CLI talks to it.
///
/// Its stderr (the log) goes to `<directory>.log`, removed by `cleanUp()` — and at once when the start fails, after
/// its text went into the error.
public final class CoordinatorProcess: @unchecked Sendable {
    // @unchecked: every property is set in init and only read; `process` is only signalled and waited on.
    public let process: ChildProcess
    public let endpoint: Endpoint
    public let directory: String
    public let logFile: String

    private init(process: ChildProcess, endpoint: Endpoint, directory: String, logFile: String) {
        self.process = process
        self.endpoint = endpoint
        self.directory = directory
        self.logFile = logFile
    }

    /// Starts `binary coordinator --listen 127.0.0.1:0 --data directory --log-level logLevel arguments…` and waits
    /// (at most 60 s) for its "listening on" line. Throws `unavailable` with the log when it does not come.
    public static func start(
        binary: String,
        directory: String,
        arguments: [String] = [],
        logLevel: String = "warning"
    ) async throws -> CoordinatorProcess {
        let logFile = directory + ".log"
        let process = try ChildProcess(
            executable: binary,
            arguments: ["coordinator", "--listen", "127.0.0.1:0", "--data", directory, "--log-level", logLevel]
                + arguments,
            stdout: .pipe,
            stderr: .file(logFile, append: false)
        )
        let line = await firstLine(of: process.stdoutDescriptor, within: .seconds(60))
        guard let line, line.contains("listening on 127.0.0.1:"),
            let port = Int(line.split(separator: ":").last ?? "")
        else {
            let status = process.stop(grace: .seconds(5))
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: logFile)
            throw NetleaseError(
                .unavailable,
                "coordinator did not start (\(status)): \(line ?? "no output")\n\(log)"
            )
        }
        return CoordinatorProcess(
            process: process,
            endpoint: Endpoint(host: "127.0.0.1", port: port),
            directory: directory,
            logFile: logFile
        )
    }

    /// `--coordinator` for the CLI.
    public var address: String { endpoint.description }
    public var secretFile: String { (directory as NSString).appendingPathComponent(ClusterSecret.fileName) }
    public var readerSecretFile: String {
        (directory as NSString).appendingPathComponent(ClusterSecret.readerFileName)
    }
    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { process.isRunning }

    /// The cluster secret it created in its data directory.
    public var secret: String {
        get throws {
            try String(contentsOfFile: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// SIGKILL, and waits until it is gone: a crash that leaves it no chance to finish anything.
    public func kill9() {
        process.signal(SIGKILL)
        process.wait()
    }

    /// SIGTERM, then SIGKILL after `grace`; the exit status (128 + signal when killed by one).
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) -> Int32 {
        process.stop(grace: grace).shellStatus
    }

    /// Connects with the cluster secret and runs `body`.
    public func connect<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
        try await NetleaseConnection.connect(to: endpoint, secret: try secret, body)
    }

    /// Stops the process if it still runs and removes its log.
    public func cleanUp() {
        if process.isRunning { stop(grace: .seconds(5)) }
        try? FileManager.default.removeItem(atPath: logFile)
    }

    /// The first line written to `descriptor`, or nil when it ends or `timeout` passes first. Reads on a thread of
    /// its own (blocking reads), so the cooperative pool is never held.
    static func firstLine(of descriptor: Int32, within timeout: Duration) async -> String? {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 4096)
                let deadline = ContinuousClock.now + timeout
                while ContinuousClock.now < deadline {
                    var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                    // Wakes at least every second to check the deadline; poll itself is the wait.
                    if poll(&ready, 1, 1_000) == 0 { continue }
                    let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    bytes += chunk[..<count]
                    if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
                        continuation.resume(returning: String(decoding: bytes[..<newline], as: UTF8.self))
                        return
                    }
                }
                continuation.resume(returning: nil)
            }
        }
    }
}
