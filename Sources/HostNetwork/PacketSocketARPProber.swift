import Foundation
import Glibc
import NetleaseCore
import Synchronization

/// RFC 5227 ARP probing and watching with a raw AF_PACKET socket, no `arping` process.
///
/// Design notes:
/// - The socket is created with protocol 0 (it receives nothing yet) and then bound to (ETH_P_ARP, the bridge's
///   ifindex): from then on the kernel hands it exactly the ARP frames seen on that interface, and `send` without an
///   address transmits on it. `getsockname` on the bound socket returns the interface's MAC, which becomes the
///   probe's sender hardware address; answers (the kernel answers a probe with sender IP 0 by unicast to that MAC)
///   therefore come back to the bridge device.
/// - A packet socket also sees our own transmitted frames (PACKET_OUTGOING); they are skipped by packet type and by
///   sender MAC.
/// - Timing (`ARPProbeOptions`): probes are sent a random interval apart, and the socket is watched with poll()
///   until `wait` after the last probe. The first conflicting frame ends the probe early; frames from MACs the
///   caller ignores (its own container) do not. No sleeps: poll() is the only wait.
/// - Watching keeps a socket of the same kind open and reports every frame whose sender claims an address; it polls
///   in 200 ms steps so that a consumer that stops iterating ends the thread promptly.
/// - All of it runs on a dedicated thread: it blocks (poll), and, when a namespace is given, the thread enters it
///   with setns(2) before creating the socket. A socket stays in the namespace it was created in, and network
///   namespace membership is per thread, so only this dedicated thread ever changes namespace, and it goes back
///   before it hands anything over (`NetworkNamespace.enterOnThisThread`): a thread started from it would inherit
///   the namespace. (Swift's cooperative threads are shared and must never change namespace.) setns is looked up with dlsym because Glibc's Swift module does not export
///   it; it needs CAP_SYS_ADMIN.
/// - Requires CAP_NET_RAW.
public struct PacketSocketARPProber: ARPProber {
    /// The namespace whose interfaces are probed; nil means this process's own.
    public var namespace: NetworkNamespace?

    public init(namespace: NetworkNamespace? = nil) {
        self.namespace = namespace
    }

    public func probe(
        _ address: IPv4Address,
        on interface: String,
        options: ARPProbeOptions,
        ignoring: Set<String>
    )
        async throws -> String?
    {
        guard Names.isValidInterface(interface) else {
            throw HostNetworkError(.invalidConfiguration, "'\(interface)' is not a valid interface name")
        }
        let namespace = self.namespace
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String?, any Error>) in
            let thread = Thread {
                continuation.resume(
                    with: Result {
                        // Back in the process's namespace before the resume (see `enterOnThisThread`).
                        let back = try namespace?.enterOnThisThread()
                        defer { back?.restore() }
                        return try Self.probeBlocking(
                            address,
                            interface: interface,
                            options: options,
                            ignoring: ignoring
                        )
                    }
                )
            }
            thread.name = "netlease-arp-probe"
            thread.start()
        }
    }

    public func watch(_ interface: String) -> AsyncThrowingStream<ARPClaim, any Error> {
        let namespace = self.namespace
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ARPClaim.self)
        let stop = StopFlag()
        continuation.onTermination = { _ in stop.set() }
        let thread = Thread {
            do {
                guard Names.isValidInterface(interface) else {
                    throw HostNetworkError(.invalidConfiguration, "'\(interface)' is not a valid interface name")
                }
                // The socket is made in the namespace; the thread goes back at once, before its first yield
                // (see `enterOnThisThread`).
                let back = try namespace?.enterOnThisThread()
                let opened = Result { try Self.openBound(interface) }
                back?.restore()
                let (fd, ownMAC) = try opened.get()
                try Self.watchBlocking(fd, ownMAC: ownMAC, interface, stop: stop) { continuation.yield($0) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        thread.name = "netlease-arp-watch"
        thread.start()
        return stream
    }

    /// Set when the consumer of a watch goes away.
    private final class StopFlag: Sendable {
        private let flag = Mutex(false)
        func set() { flag.withLock { $0 = true } }
        var isSet: Bool { flag.withLock { $0 } }
    }

    // MARK: blocking part (dedicated thread only)

    private static let ethPARP = UInt16(0x0806)
    private static let packetOutgoing: UInt8 = 4
    private static let sockaddrLLSize = 20

    /// A packet socket bound to `interface` for ARP, and the interface's MAC.
    private static func openBound(_ interface: String) throws -> (Int32, [UInt8]) {
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), 0)
        guard fd >= 0 else { throw socketError("socket(AF_PACKET, SOCK_RAW)") }
        do {
            let ifindex = if_nametoindex(interface)
            guard ifindex != 0 else {
                throw HostNetworkError(.invalidConfiguration, "no interface named \(interface) to probe on")
            }
            var address = [UInt8](repeating: 0, count: sockaddrLLSize)
            address.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
                raw.storeBytes(of: ethPARP.bigEndian, toByteOffset: 2, as: UInt16.self)
                raw.storeBytes(of: Int32(bitPattern: ifindex), toByteOffset: 4, as: Int32.self)
            }
            let bound = address.withUnsafeBytes { raw in
                bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(sockaddrLLSize))
            }
            guard bound == 0 else { throw socketError("bind AF_PACKET to \(interface)") }
            var length = socklen_t(sockaddrLLSize)
            let named = address.withUnsafeMutableBytes { raw in
                getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
            }
            guard named == 0 else { throw socketError("getsockname on \(interface)") }
            guard address[11] == 6 else {
                throw HostNetworkError(.invalidConfiguration, "\(interface) has no Ethernet address to probe from")
            }
            return (fd, Array(address[12..<18]))
        } catch {
            close(fd)
            throw error
        }
    }

    /// Reads every frame waiting on `fd` (never blocks) and hands each incoming one to `frame`; stops early when
    /// `frame` returns a value.
    private static func drain<T>(
        _ fd: Int32,
        buffer: inout [UInt8],
        _ frame: (ArraySlice<UInt8>) -> T?
    ) throws
        -> T?
    {
        while true {
            var from = [UInt8](repeating: 0, count: sockaddrLLSize)
            var fromLength = socklen_t(sockaddrLLSize)
            let count = buffer.withUnsafeMutableBytes { raw in
                from.withUnsafeMutableBytes { fromRaw in
                    recvfrom(
                        fd,
                        raw.baseAddress,
                        raw.count,
                        Int32(MSG_DONTWAIT),
                        fromRaw.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                        &fromLength
                    )
                }
            }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
                throw socketError("recvfrom")
            }
            if from[10] == packetOutgoing { continue }
            if let value = frame(buffer[0..<count]) { return value }
        }
    }

    private static func probeBlocking(
        _ candidate: IPv4Address,
        interface: String,
        options: ARPProbeOptions,
        ignoring: Set<String>
    ) throws -> String? {
        let (fd, ownMAC) = try openBound(interface)
        defer { close(fd) }
        let frame = ARPPacket.probe(senderMAC: ownMAC, target: candidate)
        let clock = ContinuousClock()
        // When each probe goes out: the first at once, the others a random interval after the one before.
        var sendTimes = [clock.now]
        while sendTimes.count < options.probes {
            let gap =
                options.interval.lowerBound
                + (options.interval.upperBound - options.interval.lowerBound) * Double.random(in: 0...1)
            sendTimes.append(sendTimes.last! + gap)
        }
        let deadline = sendTimes.last! + options.wait
        var sent = 0
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            let now = clock.now
            if sent < sendTimes.count && now >= sendTimes[sent] {
                let written = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
                guard written == frame.count else { throw socketError("send ARP probe on \(interface)") }
                sent += 1
                continue
            }
            if sent == sendTimes.count && now >= deadline { return nil }
            let wake = sent < sendTimes.count ? min(sendTimes[sent], deadline) : deadline
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, PollTimeout.milliseconds(until: wake, from: now))
            if ready < 0 {
                if errno == EINTR { continue }
                throw socketError("poll")
            }
            guard ready > 0 else { continue }
            let answer = try drain(fd, buffer: &buffer) { frame -> String? in
                guard let mac = ARPPacket.conflictingMAC(in: frame, candidate: candidate, ownMAC: ownMAC),
                    !ignoring.contains(mac)
                else { return nil }
                return mac
            }
            if let answer { return answer }
        }
    }

    private static func watchBlocking(
        _ fd: Int32,
        ownMAC: [UInt8],
        _ interface: String,
        stop: StopFlag,
        _ claim: (ARPClaim) -> Void
    ) throws {
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 2048)
        while !stop.isSet {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 200)
            if ready < 0 {
                if errno == EINTR { continue }
                throw socketError("poll")
            }
            guard ready > 0 else { continue }
            if descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
                throw HostNetworkError(.socket, "the watch of \(interface) failed (was it removed?)")
            }
            _ = try drain(fd, buffer: &buffer) { frame -> Void? in
                if let found = ARPPacket.claim(in: frame, ownMAC: ownMAC) { claim(found) }
                return nil
            }
        }
    }

    private static func socketError(_ what: String) -> HostNetworkError {
        let code = errno
        return HostNetworkError(.socket, "\(what): \(String(cString: strerror(code))) (errno \(code))")
    }
}
