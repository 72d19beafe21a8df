import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A deliberately dumb TCP client on a blocking POSIX socket: it sends exactly the bytes a test gives it, so tests
/// can speak malformed, oversized, pipelined or half-sent lines that the real client would never produce.
final class RawLineClient: @unchecked Sendable {
    // @unchecked: a test hands a client from the task that opened it to the one that reads it, never sharing it.
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, receiveTimeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            Glibc.close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED)
        }
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPIPE) }
            offset += n
        }
    }

    /// Sends `text` from another thread and then shuts down the sending side, so the caller can read replies while
    /// a long pipeline is still going out (a client that sends everything before reading can dead-lock with any
    /// server that stops reading while its replies are not drained). The returned group is left when done.
    func sendThenShutdownInBackground(_ text: String) -> DispatchGroup {
        let group = DispatchGroup()
        let bytes = Array(text.utf8)
        let fd = self.fd
        DispatchQueue.global().async(group: group) {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                guard n > 0 else { break }
                offset += n
            }
            Glibc.shutdown(fd, Int32(SHUT_WR))
        }
        return group
    }

    /// Waits until a reply byte can be read (without reading it); false after `seconds`.
    func waitUntilReadable(seconds: Int32 = 10) -> Bool {
        if !buffer.isEmpty { return true }
        var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&ready, 1, seconds * 1000) == 1
    }

    /// The next line without its LF, or nil at end of stream.
    func readLine() throws -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeFirst(newline + 1)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return nil }
            guard n > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    func readLines(_ count: Int) throws -> [String] {
        var lines: [String] = []
        for _ in 0..<count {
            guard let line = try readLine() else { break }
            lines.append(line)
        }
        return lines
    }

    /// True when the server closed the connection (reads end of stream, or a reset).
    func isClosedByPeer() -> Bool {
        do {
            while let _ = try readLine() {}
            return true
        } catch let error as POSIXError where error.code == .ECONNRESET {
            return true
        } catch {
            return false
        }
    }
}
