import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The real `netlease coordinator` executable as a child process, so tests can `SIGKILL` it mid-work.
final class ChildCoordinator: @unchecked Sendable {
    // @unchecked: set once in `start`, then only read; `process` is only signalled and waited on.
    let process: Process
    let endpoint: Endpoint
    let directory: String
    private let stderrFile: String

    static func binary() throws -> String {
        do { return try Executables.path() } catch {
            throw XCTSkip("\(error)")
        }
    }

    private init(process: Process, endpoint: Endpoint, directory: String, stderrFile: String) {
        self.process = process
        self.endpoint = endpoint
        self.directory = directory
        self.stderrFile = stderrFile
    }

    /// Starts the coordinator on 127.0.0.1 port 0 and waits for its "listening on" line.
    static func start(directory: String, extraArguments: [String] = []) async throws -> ChildCoordinator {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = ["coordinator", "--listen", "127.0.0.1:0", "--data", directory, "--log-level", "warning"]
            + extraArguments
        let stdout = Pipe()
        process.standardOutput = stdout
        let stderrFile = directory + ".stderr"
        FileManager.default.createFile(atPath: stderrFile, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: stderrFile)
        try process.run()
        let reader = stdout.fileHandleForReading
        let line: String? = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var bytes: [UInt8] = []
                while true {
                    let chunk = reader.availableData
                    if chunk.isEmpty { break }
                    bytes += chunk
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
            process.terminate()
            process.waitUntilExit()
            let log = (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? ""
            throw NetleaseError(.unavailable, "coordinator did not start: \(line ?? "no output")\n\(log)")
        }
        return ChildCoordinator(
            process: process, endpoint: Endpoint(host: "127.0.0.1", port: port), directory: directory,
            stderrFile: stderrFile)
    }

    var secret: String {
        get throws {
            try String(contentsOfFile: directory + "/cluster-secret", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func terminate() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
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
