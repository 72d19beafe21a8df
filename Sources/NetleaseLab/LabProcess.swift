import Foundation
import HostNetwork

#if canImport(Glibc)
import Glibc
#endif

/// A process started by a lab: its stdout lines can be awaited; stop() ends it.
public final class LabProcess: @unchecked Sendable {
    // @unchecked: `seen`, `waiters` and `ended` are guarded by `lock`; `process` is only signalled and waited on.
    public let name: String
    public let logPath: String
    let process: ChildProcess
    private let lock = NSLock()
    private var seen: [String] = []
    private var waiters: [(String, CheckedContinuation<String?, Never>)] = []
    private var ended = false

    public init(argv: [String], name: String, logPath: String) throws {
        self.name = name
        self.logPath = logPath
        process = try ChildProcess(
            executable: try ProcessCommandRunner().resolve(argv[0]),
            arguments: Array(argv.dropFirst()),
            stdout: .pipe,
            stderr: .file(logPath, append: false)
        )
        let reader = process.stdoutDescriptor
        Thread.detachNewThread { [self] in
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 16_384)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                buffer += chunk[..<count]
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffer[..<newline], as: UTF8.self)
                    buffer.removeFirst(newline + 1)
                    self.deliver(line)
                }
            }
            self.finish()
        }
    }

    private func deliver(_ line: String) {
        let ready = lock.withLock { () -> [CheckedContinuation<String?, Never>] in
            seen.append(line)
            var matched: [CheckedContinuation<String?, Never>] = []
            waiters.removeAll { text, continuation in
                guard line.contains(text) else { return false }
                matched.append(continuation)
                return true
            }
            return matched
        }
        for continuation in ready { continuation.resume(returning: line) }
    }

    private func finish() {
        let pending = lock.withLock { () -> [CheckedContinuation<String?, Never>] in
            ended = true
            defer { waiters = [] }
            return waiters.map(\.1)
        }
        for continuation in pending { continuation.resume(returning: nil) }
    }

    /// The first stdout line containing `text` (already printed or still to come), or nil when the process ends
    /// first or `timeout` passes.
    public func line(containing text: String, timeout: Duration = .seconds(30)) async -> String? {
        let result: String? = await withTaskGroup(of: String?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let immediate: String?? = self.lock.withLock {
                        if let line = self.seen.first(where: { $0.contains(text) }) { return .some(line) }
                        if self.ended { return .some(nil) }
                        self.waiters.append((text, continuation))
                        return nil
                    }
                    if let immediate { continuation.resume(returning: immediate) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            // The waiting child ends only when resumed: resume it here, or the group would wait for it forever.
            if first == nil { cancelWaiters(for: text) }
            return first
        }
        return result
    }

    private func cancelWaiters(for text: String) {
        let pending = lock.withLock { () -> [CheckedContinuation<String?, Never>] in
            var matched: [CheckedContinuation<String?, Never>] = []
            waiters.removeAll { candidate, continuation in
                guard candidate == text else { return false }
                matched.append(continuation)
                return true
            }
            return matched
        }
        for continuation in pending { continuation.resume(returning: nil) }
    }

    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.pid }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status (128 + signal when killed).
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) -> Int32 {
        process.stop(grace: grace).shellStatus
    }

    public func kill9() {
        process.signal(SIGKILL)
        process.wait()
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}
