import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import XCTest

#if canImport(Glibc)
import Glibc
import NetleaseTransport
#endif

/// The real `netlease coordinator` executable as a child process, so tests can `SIGKILL` it mid-work.
final class ChildCoordinator: @unchecked Sendable {
    // @unchecked: set once in `start`, then only read; `process` is only signalled and waited on.
    let process: ChildProcess
    let endpoint: Endpoint
    let directory: String
    private let stderrFile: String

    static func binary() throws -> String {
        // Under CI's variable a missing executable is a failure: the crash tests must run there.
        do { return try Executables.path() } catch { try missingCapability("\(error)") }
    }

    private init(process: ChildProcess, endpoint: Endpoint, directory: String, stderrFile: String) {
        self.process = process
        self.endpoint = endpoint
        self.directory = directory
        self.stderrFile = stderrFile
    }

    /// Starts the coordinator on 127.0.0.1 port 0 and waits for its "listening on" line.
    static func start(directory: String, extraArguments: [String] = []) async throws -> ChildCoordinator {
        let stderrFile = directory + ".stderr"
        let process = try ChildProcess(
            executable: try binary(),
            arguments: ["coordinator", "--listen", "127.0.0.1:0", "--data", directory, "--log-level", "warning"]
                + extraArguments,
            stdout: .pipe,
            stderr: .file(stderrFile, append: false)
        )
        let reader = process.stdoutDescriptor
        // The first line only, within 60 s; the pipe stays open (unread) until the child exits, which its buffer
        // allows.
        let line: String? = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 4096)
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline {
                    var ready = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
                    if poll(&ready, 1, 1_000) == 0 { continue }
                    let count = chunk.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
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
        guard let line, line.contains("listening on 127.0.0.1:"), let port = Int(line.split(separator: ":").last ?? "")
        else {
            process.stop(grace: .seconds(5))
            let log = (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: stderrFile)
            throw NetleaseError(.unavailable, "coordinator did not start: \(line ?? "no output")\n\(log)")
        }
        return ChildCoordinator(
            process: process,
            endpoint: Endpoint(host: "127.0.0.1", port: port),
            directory: directory,
            stderrFile: stderrFile
        )
    }

    var secret: String {
        get throws {
            try String(contentsOfFile: directory + "/cluster-secret", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func kill9() {
        process.signal(SIGKILL)
        process.wait()
    }

    /// SIGTERM and wait; the exit status (128 + signal when killed by one).
    func terminate() -> Int32 {
        process.signal(SIGTERM)
        return process.wait().shellStatus
    }

    var stderrText: String { (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? "" }

    func cleanUp() {
        if process.isRunning { kill9() }
        try? FileManager.default.removeItem(atPath: stderrFile)
    }

    func connect<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
        try await NetleaseConnection.connect(to: endpoint, secret: try secret, body)
    }
}
