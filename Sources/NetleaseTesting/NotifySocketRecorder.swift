import Foundation
import NetleaseCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A stand-in for systemd's notify socket: a real AF_UNIX datagram socket (a file in a temporary directory, or an
/// abstract name) that records every message sent to it with the time it arrived. Tests hand `environmentValue`
/// to a daemon as `$NOTIFY_SOCKET` and then wait for the messages they expect. Call `close()` when done: the
/// receiving thread holds the recorder until then.
public final class NotifySocketRecorder: @unchecked Sendable {
    // @unchecked: `received` is guarded by its Mutex; `fd` is closed once, in `close()`.
    /// One datagram: its assignments in order, and when it arrived.
    public struct Message: Sendable {
        public var assignments: [String]
        public var arrived: ContinuousClock.Instant

        public func has(_ assignment: String) -> Bool { assignments.contains(assignment) }

        /// The value of `KEY=…`, if the message has it.
        public func value(of key: String) -> String? {
            assignments.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
    }

    /// What to put in `$NOTIFY_SOCKET`: the path, or `@name` for an abstract socket.
    public let environmentValue: String
    private let fd: Int32
    private let received = Mutex<[Message]>([])
    private let closed = Mutex(false)

    /// Binds `path` (a file that must not exist), or the abstract `name` when `abstract` is true.
    public init(path: String, abstract: Bool = false) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NetleaseError(.unavailable, "socket(AF_UNIX, SOCK_DGRAM): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if abstract { bytes.insert(0, at: 0) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw NetleaseError(.unavailable, "bind \(path): errno \(code)")
        }
        self.fd = fd
        environmentValue = abstract ? "@" + path : path
        let thread = Thread { [self] in receive() }
        thread.name = "notify-socket-recorder"
        thread.start()
    }

    /// Every message so far.
    public var messages: [Message] { received.withLock { $0 } }

    /// Waits until a message matching `predicate` has arrived; nil after `timeout`.
    public func first(
        within timeout: Duration,
        where predicate: @escaping @Sendable (Message) -> Bool
    ) async -> Message? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let message = messages.first(where: predicate) { return message }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Stops recording; the receiving thread closes the socket within 100 ms (a path socket's file is left for
    /// the caller's directory cleanup).
    public func close() {
        closed.withLock { $0 = true }
    }

    private func receive() {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !closed.withLock({ $0 }) {
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, 100)
            if polled <= 0 { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count > 0 else { continue }
            let text = String(decoding: buffer[..<count], as: UTF8.self)
            let message = Message(
                assignments: text.split(separator: "\n").map(String.init),
                arrived: ContinuousClock.now
            )
            received.withLock { $0.append(message) }
        }
        Glibc.close(fd)
    }
}
