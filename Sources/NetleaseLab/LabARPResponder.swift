import Foundation
import HostNetwork
import NetleaseCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A slow neighbour for probe tests: answers ARP requests for chosen addresses, each after its own delay, from a raw
/// AF_PACKET socket on one interface of a lab namespace. The kernel answers at once or not at all, and `tc netem` is
/// not available everywhere, so the delay is made in userspace.
///
/// Design notes:
/// - The socket is opened on a thread of its own that first enters the namespace with setns(2): a socket stays in
///   the namespace it was created in, and only this thread ever changes namespace (as in `PacketSocketARPProber`).
/// - Answers are what a Linux host sends to an RFC 5227 probe: an ARP reply with the address as sender IP, sent
///   unicast to the asker's MAC. Each request gets its own answer `delay` after it arrived, so a late answer to the
///   first probe of a series is still sent while later probes come in.
/// - The thread polls in 20 ms steps so `stop()` ends it promptly; the lab calls `stop()` before deleting
///   namespaces.
public final class LabARPResponder: Sendable {
    /// The MAC the answers come from (lowercase, colon separated).
    public let mac: String
    private let shared: Shared
    private let finished: DispatchSemaphore

    private struct State: Sendable {
        var stopping = false
        var requests = 0
        var answers = 0
    }

    /// What the responder thread and its owner share; a class, so the thread can hold it before `self` exists.
    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    /// Starts answering inside `namespace` on `interface` (which must be up), registered for stopping with the lab.
    public static func start(
        in namespace: String,
        interface: String,
        answering delays: [IPv4Address: Duration],
        lab: NamespaceLab
    ) throws -> LabARPResponder {
        let responder = try LabARPResponder(
            namespace: "/var/run/netns/" + namespace,
            interface: interface,
            delays: delays
        )
        lab.onDestroy { responder.stop() }
        return responder
    }

    /// ARP requests for one of the addresses seen so far, and answers sent.
    public var counts: (requests: Int, answers: Int) { shared.state.withLock { ($0.requests, $0.answers) } }

    /// Stops answering and waits for the thread to end (idempotent).
    public func stop() {
        let first = shared.state.withLock { state -> Bool in
            defer { state.stopping = true }
            return !state.stopping
        }
        if first { finished.wait() }
    }

    private init(namespace: String, interface: String, delays: [IPv4Address: Duration]) throws {
        let shared = Shared()
        self.shared = shared
        let opened = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<[UInt8], LabResponderError>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        self.finished = finished
        let worker = Thread {
            do {
                let (fd, mac) = try Self.open(namespace: namespace, interface: interface)
                outcome.withLock { $0 = .success(mac) }
                opened.signal()
                Self.serve(fd: fd, mac: mac, delays: delays, shared: shared)
                close(fd)
            } catch {
                let failure = error as? LabResponderError ?? LabResponderError(message: "\(error)")
                outcome.withLock { $0 = .failure(failure) }
                opened.signal()
            }
            finished.signal()
        }
        worker.name = "lab-arp-responder"
        worker.start()
        opened.wait()
        switch outcome.withLock({ $0 }) {
        case .success(let bytes)?:
            mac = bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
        case .failure(let error)?:
            shared.state.withLock { $0.stopping = true }
            throw NetleaseError(.unavailable, "ARP responder: " + error.message)
        case nil:
            throw NetleaseError(.internalError, "ARP responder: the thread reported nothing")
        }
    }

    // MARK: the responder thread

    private struct LabResponderError: Error, Sendable {
        var message: String
    }

    private static let ethPARP = UInt16(0x0806)

    private static func failure(_ what: String) -> LabResponderError {
        LabResponderError(message: "\(what): \(String(cString: strerror(errno)))")
    }

    private static func open(namespace: String, interface: String) throws -> (Int32, [UInt8]) {
        // The socket is made in the namespace and the thread goes back at once (`enterOnThisThread`).
        let back: NamespaceReturn
        do {
            back = try NetworkNamespace.path(namespace).enterOnThisThread()
        } catch {
            throw LabResponderError(message: "\(error)")
        }
        defer { back.restore() }
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(ethPARP.bigEndian))
        guard fd >= 0 else { throw failure("socket(AF_PACKET)") }
        let ifindex = if_nametoindex(interface)
        guard ifindex != 0 else {
            close(fd)
            throw LabResponderError(message: "no interface \(interface) in \(namespace)")
        }
        var address = [UInt8](repeating: 0, count: 20)
        address.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: ethPARP.bigEndian, toByteOffset: 2, as: UInt16.self)
            raw.storeBytes(of: Int32(bitPattern: ifindex), toByteOffset: 4, as: Int32.self)
        }
        var length = socklen_t(20)
        let bound = address.withUnsafeMutableBytes { raw -> Int32 in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: sockaddr.self)
            guard bind(fd, pointer, 20) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
        guard bound == 0, address[11] == 6 else {
            close(fd)
            throw failure("bind/getsockname on \(interface)")
        }
        return (fd, Array(address[12..<18]))
    }

    private static func serve(fd: Int32, mac: [UInt8], delays: [IPv4Address: Duration], shared: Shared) {
        let clock = ContinuousClock()
        var due: [(at: ContinuousClock.Instant, frame: [UInt8])] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while !shared.state.withLock({ $0.stopping }) {
            let now = clock.now
            for reply in due where reply.at <= now {
                _ = reply.frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
                shared.state.withLock { $0.answers += 1 }
            }
            due.removeAll { $0.at <= now }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 5) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count >= 42 else { continue }
            let frame = Array(buffer[0..<count])
            // ARP for IPv4 over Ethernet, a request, not our own.
            guard frame[12] == 0x08, frame[13] == 0x06, frame[20] == 0, frame[21] == 1,
                Array(frame[22..<28]) != mac
            else { continue }
            let target = IPv4Address((0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(frame[38 + $1]) })
            guard let delay = delays[target] else { continue }
            shared.state.withLock { $0.requests += 1 }
            var reply = [UInt8](repeating: 0, count: 60)
            reply.replaceSubrange(0..<6, with: frame[22..<28])  // to the asker
            reply.replaceSubrange(6..<12, with: mac)
            reply.replaceSubrange(12..<22, with: [0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2])
            reply.replaceSubrange(22..<28, with: mac)
            reply.replaceSubrange(28..<32, with: frame[38..<42])  // sender IP: the address asked for
            reply.replaceSubrange(32..<38, with: frame[22..<28])
            reply.replaceSubrange(38..<42, with: frame[28..<32])  // target IP: the asker's (0.0.0.0 for a probe)
            due.append((clock.now + delay, reply))
        }
    }
}
