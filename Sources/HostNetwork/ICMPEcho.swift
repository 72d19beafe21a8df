import Foundation
import Glibc
import NetleaseCore

/// ICMP echo ("ping") over a raw socket, no `ping` process: whether an address answers.
///
/// Design notes:
/// - A raw `IPPROTO_ICMP` socket (CAP_NET_RAW) receives every ICMP packet of its namespace, IP header included.
///   ICMP_FILTER lets only echo replies through; of those, only replies from the target carrying our identifier
///   count, so concurrent echoes in one namespace never answer each other.
/// - Requests go out every `interval` until a reply or `timeout`: the first packets over a fresh tunnel may be lost
///   while the path is learned (ARP through the mesh), so one lost request proves nothing.
/// - It runs on a dedicated thread, like the ARP prober: it blocks in poll(), and with a `namespace` the thread
///   enters it with setns(2) before creating the socket (a socket stays in the namespace it was made in). The
///   thread ends with the echo, so nothing else ever runs in the foreign namespace.
/// - The kernel's unprivileged "ping sockets" (SOCK_DGRAM) are not used: a fresh namespace allows them to no group
///   (`net.ipv4.ping_group_range` = "1 0").
public struct ICMPEcho: Sendable {
    /// The namespace to send from; nil means this process's own.
    public var namespace: NetworkNamespace?
    /// Time between requests while no reply came.
    public var interval: Duration

    public init(namespace: NetworkNamespace? = nil, interval: Duration = .milliseconds(250)) {
        self.namespace = namespace
        self.interval = interval
    }

    /// Whether `address` answers an echo request within `timeout`. Throws when no request can be sent at all (no
    /// CAP_NET_RAW, no such namespace), so a missing capability is never mistaken for an unreachable address.
    public func answers(_ address: IPv4Address, within timeout: Duration) async throws -> Bool {
        let namespace = self.namespace
        let interval = self.interval
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
            let thread = Thread {
                continuation.resume(
                    with: Result {
                        // Back in the process's namespace before the resume (see `enterOnThisThread`).
                        let back = try namespace?.enterOnThisThread()
                        defer { back?.restore() }
                        return try Self.echoBlocking(address, timeout: timeout, interval: interval)
                    }
                )
            }
            thread.name = "netlease-icmp-echo"
            thread.start()
        }
    }

    // MARK: packets (pure)

    static let echoRequest: UInt8 = 8
    static let echoReply: UInt8 = 0

    /// An echo request: type 8, code 0, checksum, identifier, sequence, then `payload`.
    static func request(identifier: UInt16, sequence: UInt16, payload: [UInt8]) -> [UInt8] {
        var packet: [UInt8] =
            [
                echoRequest, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF),
                UInt8(sequence >> 8), UInt8(sequence & 0xFF),
            ] + payload
        let sum = checksum(packet)
        packet[2] = UInt8(sum >> 8)
        packet[3] = UInt8(sum & 0xFF)
        return packet
    }

    /// The Internet checksum (RFC 1071): one's complement of the one's complement sum of 16-bit words.
    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// Whether `datagram` (as a raw ICMP socket delivers it: IPv4 header, then ICMP) is an echo reply from `source`
    /// to a request with `identifier`.
    static func isReply(_ datagram: ArraySlice<UInt8>, from source: IPv4Address, identifier: UInt16) -> Bool {
        let bytes = Array(datagram)
        guard bytes.count >= 20, bytes[0] >> 4 == 4 else { return false }
        let headerLength = Int(bytes[0] & 0x0F) * 4
        guard headerLength >= 20, bytes.count >= headerLength + 8, bytes[9] == 1 else { return false }
        let sender = IPv4Address(
            UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
        )
        let icmp = bytes[headerLength...]
        let start = icmp.startIndex
        return sender == source && icmp[start] == echoReply && icmp[start + 1] == 0
            && UInt16(icmp[start + 4]) << 8 | UInt16(icmp[start + 5]) == identifier
    }

    // MARK: blocking part (dedicated thread only)

    /// SOL_RAW and ICMP_FILTER from <linux/icmp.h>; Glibc's module does not export them.
    private static let solRaw: Int32 = 255
    private static let icmpFilter: Int32 = 1

    private static func echoBlocking(_ target: IPv4Address, timeout: Duration, interval: Duration) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_ICMP))
        guard fd >= 0 else {
            let code = errno
            let hint = code == EPERM || code == EACCES ? " (needs CAP_NET_RAW: run as root)" : ""
            throw HostNetworkError(
                .socket,
                "socket(AF_INET, SOCK_RAW, ICMP): \(String(cString: strerror(code)))\(hint)"
            )
        }
        defer { close(fd) }
        // Every ICMP type but echo reply is filtered out by the kernel.
        var filter = ~(UInt32(1) << UInt32(echoReply))
        _ = setsockopt(fd, solRaw, icmpFilter, &filter, socklen_t(MemoryLayout<UInt32>.size))

        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_addr.s_addr = target.value.bigEndian
        let identifier = UInt16.random(in: 1...UInt16.max)
        let payload = Array("netlease echo".utf8)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var nextRequest = clock.now
        var sequence: UInt16 = 0
        var buffer = [UInt8](repeating: 0, count: 1500)
        while true {
            let now = clock.now
            if now >= deadline { return false }
            if now >= nextRequest {
                sequence &+= 1
                let packet = request(identifier: identifier, sequence: sequence, payload: payload)
                // A failed send (ENETUNREACH: no route yet) is not final: the next interval tries again, as a
                // route may appear meanwhile.
                _ = withUnsafePointer(to: &destination) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                        packet.withUnsafeBytes {
                            sendto(fd, $0.baseAddress, $0.count, 0, address, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                }
                nextRequest = now + interval
            }
            let wake = min(nextRequest, deadline)
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, PollTimeout.milliseconds(until: wake, from: clock.now))
            if ready < 0 {
                if errno == EINTR { continue }
                throw HostNetworkError(.socket, "poll: \(String(cString: strerror(errno)))")
            }
            guard ready > 0 else { continue }
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if count <= 0 { break }
                if isReply(buffer[0..<count], from: target, identifier: identifier) { return true }
            }
        }
    }
}
