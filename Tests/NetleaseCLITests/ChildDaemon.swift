import Foundation
import HostNetwork
import NetleaseCore
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The built `netlease` running as a daemon (coordinator) in a child process: stdout read line by line, stderr
/// kept in a file for the test to read.
final class ChildDaemon: @unchecked Sendable {
    // @unchecked: `lines` is guarded by `lock`; the rest is set in init.
    let process: ChildProcess
    let stderrFile: String
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial: [UInt8] = []

    /// `user`: run it as that user (through runuser), as a service manager would; nil: as this process's user.
    init(_ arguments: [String], environment: [String: String] = [:], stderrFile: String, user: String? = nil) throws {
        let executable = try BuiltExecutable.path()
        process = try ChildProcess(
            executable: user == nil ? executable : "/usr/sbin/runuser",
            arguments: user.map { ["-u", $0, "--", executable] + arguments } ?? arguments,
            environment: BuiltExecutable.cleanEnvironment(adding: environment),
            stdout: .pipe,
            stderr: .file(stderrFile, append: false)
        )
        self.stderrFile = stderrFile
        let reader = process.stdoutDescriptor
        Thread.detachNewThread { [self] in
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return }
                lock.withLock {
                    partial += chunk[..<count]
                    while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
                        lines.append(String(decoding: partial[..<newline], as: UTF8.self))
                        partial.removeSubrange(...newline)
                    }
                }
            }
        }
    }

    /// The stdout lines so far.
    var stdoutLines: [String] { lock.withLock { lines } }

    /// The first stdout line containing `text`, once it is printed; nil after `timeout` or when the child exited.
    func line(containing text: String, timeout: Duration = .seconds(60)) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = stdoutLines.first(where: { $0.contains(text) }) { return line }
            if !process.isRunning { return stdoutLines.first { $0.contains(text) } }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// The port of a coordinator's "listening on HOST:PORT" line.
    func listeningPort(timeout: Duration = .seconds(60)) async throws -> Int {
        guard let line = await line(containing: "listening on", timeout: timeout),
            let port = Int(line.split(separator: ":").last ?? "")
        else {
            throw NetleaseError(.unavailable, "no 'listening on' line; stderr:\n\(stderrText)")
        }
        return port
    }

    var stderrText: String { (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? "" }

    /// SIGTERM, then the exit status once it stopped (128 + signal when a signal ended it).
    func terminate(grace: Duration = .seconds(30)) async -> Int32 {
        let process = self.process
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: process.stop(grace: grace).shellStatus)
            }
        }
    }

    deinit {
        if process.isRunning {
            process.signal(SIGKILL)
            _ = process.wait()
        }
        try? FileManager.default.removeItem(atPath: stderrFile)
    }
}

/// Plain TCP lines to a server on loopback: the bytes a hand-typed session would send, no client library between.
enum RawLineClient {
    /// Connects to 127.0.0.1:`port`, reads the greeting, then sends each line and reads one reply line for it.
    /// Returns the greeting followed by the replies (fewer when the server closes early).
    static func exchange(port: Int, _ lines: [String]) throws -> [String] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NetleaseError(.unavailable, "socket: \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw NetleaseError(.unavailable, "connect: \(errno)") }
        var buffer: [UInt8] = []
        func readLine() -> String? {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    defer { buffer.removeSubrange(...newline) }
                    return String(decoding: buffer[..<newline], as: UTF8.self)
                }
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return nil }
                buffer += chunk[..<count]
            }
        }
        var received: [String] = []
        guard let greeting = readLine() else { return received }
        received.append(greeting)
        for line in lines {
            let bytes = Array((line + "\n").utf8)
            guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { break }
            guard let reply = readLine() else { break }
            received.append(reply)
        }
        return received
    }
}
