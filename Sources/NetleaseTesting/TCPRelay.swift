import Foundation
import NetleaseTransport

#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay on 127.0.0.1 port 0 that forwards each connection to a target that can change, for tests that stop a
/// coordinator and start another one "at the same address": the client keeps the relay's address, the new coordinator
/// binds a fresh port 0.
///
/// Design notes:
/// - Binding the old coordinator's port again would race every other process on the machine for that ephemeral port
///   (and lose now and then on a busy CI host); the relay's own port stays bound for its whole life instead.
/// - One thread accepts; one thread per connection copies both ways with poll(2). Blocking sockets, no event loop:
///   a test has a handful of connections.
/// - `retarget` cuts the current connections, as a stopped coordinator would; clients reconnect and reach the new
///   target. A connection the target refuses is closed at once.
public final class TCPRelay: @unchecked Sendable {
    // @unchecked: `target`, `closed` and `open` are guarded by `lock`; the rest is set in init.
    public let endpoint: Endpoint
    private let listener: Int32
    private let lock = NSLock()
    private var target: Endpoint
    private var closed = false
    /// Both descriptors of every relayed connection, so `retarget` and `close` can cut them.
    private var open: Set<Int32> = []

    public init(to target: Endpoint) throws {
        self.target = target
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw Self.error("socket") }
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            let failure = Self.error("bind")
            Glibc.close(listener)
            throw failure
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        endpoint = Endpoint(host: "127.0.0.1", port: Int(UInt16(bigEndian: address.sin_port)))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// New connections go to `target` from now on; the current ones are cut.
    public func retarget(to target: Endpoint) {
        // Under the lock: a pump closes its descriptors only after removing them here, so a number shut down is
        // never one the kernel has already given to a newer connection.
        lock.withLock {
            self.target = target
            for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Stops accepting and cuts every connection.
    public func close() {
        lock.withLock {
            guard !closed else { return }
            closed = true
            shutdown(listener, Int32(SHUT_RDWR))
            for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    deinit { Glibc.close(listener) }

    private func acceptLoop() {
        while true {
            var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            // Woken by a connection, or at least every 200 ms to notice `close`.
            _ = poll(&ready, 1, 200)
            if lock.withLock({ closed }) { return }
            guard ready.revents & Int16(POLLIN) != 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let destination = lock.withLock { target }
            guard let upstream = Self.connect(to: destination) else {
                Glibc.close(client)
                continue
            }
            let registered = lock.withLock { () -> Bool in
                guard !closed else { return false }
                open.formUnion([client, upstream])
                return true
            }
            guard registered else {
                Glibc.close(client)
                Glibc.close(upstream)
                return
            }
            Thread.detachNewThread { [self] in pump(client, upstream) }
        }
    }

    /// Copies bytes both ways until either side ends, then closes both.
    private func pump(_ a: Int32, _ b: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        loop: while true {
            var fds = [a, b].map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for (index, entry) in fds.enumerated() where entry.revents != 0 {
                let from = entry.fd
                let to = index == 0 ? b : a
                let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0, Self.writeAll(to, buffer[..<count]) else { break loop }
            }
        }
        lock.withLock {
            open.remove(a)
            open.remove(b)
        }
        Glibc.close(a)
        Glibc.close(b)
    }

    private static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    private static func connect(to endpoint: Endpoint) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = loopback(port: endpoint.port)
        let parsed = inet_addr(endpoint.host)
        if parsed != in_addr_t.max { address.sin_addr.s_addr = parsed }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            return nil
        }
        return fd
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }

    private static func error(_ call: String) -> NSError {
        NSError(
            domain: NSPOSIXErrorDomain,
            code: Int(errno),
            userInfo: [NSLocalizedDescriptionKey: "\(call): \(String(cString: strerror(errno)))"]
        )
    }
}
