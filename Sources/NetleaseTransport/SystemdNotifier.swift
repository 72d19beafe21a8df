import Foundation
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// Tells the service manager (systemd, `Type=notify`) how the daemon is doing: `READY=1` once it serves,
/// `STATUS=…` lines for `systemctl status`, `STOPPING=1` when a graceful stop begins, `WATCHDOG=1` pings.
///
/// Design notes:
/// - The protocol is sd_notify(3)'s, spoken natively (no libsystemd): one datagram of newline-separated
///   `KEY=VALUE` assignments to the AF_UNIX socket named by `$NOTIFY_SOCKET`. A name starting with `@` is an
///   abstract socket: the `@` becomes a NUL byte and the address length ends at the name (no terminating NUL).
/// - A fresh socket per message, as sd_notify does: nothing to keep open, nothing shared between tasks.
/// - Sending never fails the daemon: a service manager that went away must not stop address leasing. A send
///   blocks at most `sendTimeout` (systemd's queue full) and then the message is dropped.
/// - systemd accepts messages from the main process only (`NotifyAccess=main`), so it does not matter that
///   children (`ip`, `nsenter`) inherit `$NOTIFY_SOCKET`.
public struct SystemdNotifier: Sendable {
    /// The socket name from `$NOTIFY_SOCKET`: a path, or `@name` for an abstract socket.
    public let socketName: String
    /// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC` (as sd_watchdog_enabled(3) advises), or nil when
    /// the service has no watchdog or `$WATCHDOG_PID` names another process.
    public let watchdogInterval: Duration?

    static let sendTimeout = timeval(tv_sec: 2, tv_usec: 0)

    /// The notifier systemd asked for through the environment, or nil when this process was not started as a
    /// `Type=notify` service (no `$NOTIFY_SOCKET`).
    public init?(environment: [String: String] = ProcessInfo.processInfo.environment, pid: Int32 = getpid()) {
        guard let name = environment["NOTIFY_SOCKET"], name.hasPrefix("/") || name.hasPrefix("@"), name.count > 1
        else { return nil }
        socketName = name
        if let text = environment["WATCHDOG_USEC"], let microseconds = UInt64(text), microseconds > 0,
            environment["WATCHDOG_PID"].map({ Int32($0) == pid }) ?? true
        {
            watchdogInterval = .microseconds(microseconds / 2)
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends `READY=1` with a status line.
    public func ready(status: String) {
        send(["READY=1", "STATUS=" + status])
    }

    /// Sends a status line (`systemctl status` shows the latest).
    public func status(_ text: String) {
        send(["STATUS=" + text])
    }

    /// Sends `STOPPING=1` with a status line.
    public func stopping(status: String = "stopping") {
        send(["STOPPING=1", "STATUS=" + status])
    }

    /// Sends `WATCHDOG=1`.
    public func watchdog() {
        send(["WATCHDOG=1"])
    }

    /// Sends one datagram with `assignments` (each `KEY=VALUE`, no newline inside: a newline would start another
    /// assignment, so it is replaced by a space). Returns whether the datagram was sent.
    @discardableResult
    public func send(_ assignments: [String]) -> Bool {
        let message = assignments.map { $0.replacingOccurrences(of: "\n", with: " ") }.joined(separator: "\n")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = Self.sendTimeout
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketName.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path socket's name is NUL-terminated inside sun_path; an abstract one fills exactly its length.
        guard path.count <= (abstract ? capacity : capacity - 1) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (abstract ? 0 : 1))
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { buffer in
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        return sent == bytes.count
    }
}
