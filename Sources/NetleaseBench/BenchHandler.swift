import Foundation
import NIOCore
import NetleaseCore

struct LoadRole: Sendable {
    let plan: LoadPlan
    let shared: RunShared
}

struct AgentRole: Sendable {
    let plan: AgentPlan
    let number: Int
}

/// One benchmark connection. Lives on its event loop only.
final class BenchHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role: Sendable {
        case load(LoadRole)
        case agent(AgentRole)
        case watcher
    }

    enum Phase { case greeting, auth, waiting, running, finished }
    enum Kind: UInt8 { case acquire, release, join, heartbeat, watch }

    struct Pending {
        var kind: Kind
        var seq: Int32
        var t: UInt64
    }

    let index: Int
    let role: Role
    let secret: String?
    let ready: EventLoopPromise<Void>
    let done: EventLoopPromise<ConnectionResult>
    private var readySignalled = false
    private var context: ChannelHandlerContext?
    private var phase = Phase.greeting
    private var inbound: ByteBuffer?
    private var pending = CircularBuffer<Pending>(initialCapacity: 64)
    private var skipRecords = 0
    private var nextSeq: Int32 = 0
    private var startNs: UInt64 = 0
    private var deadlineNs: UInt64 = .max
    private var nextIntendedNs: UInt64 = 0
    private var stopped = false
    private var needsFlush = false
    private var result: ConnectionResult
    private var acquirePrefix: [UInt8] = []
    private var releasePrefix: [UInt8] = []
    private var heartbeatLine: [UInt8] = []
    private var epoch: Int64 = 0
    private var acquiredByAgent = 0
    private var watchTimer: Scheduled<Void>?

    init(index: Int, role: Role, secret: String?, ready: EventLoopPromise<Void>, done: EventLoopPromise<ConnectionResult>) {
        self.index = index
        self.role = role
        self.secret = secret
        self.ready = ready
        self.done = done
        result = ConnectionResult(index: index)
        switch role {
        case .load(let r):
            acquirePrefix = Array("ACQUIRE network=\(r.plan.network) owner=\(r.plan.ownerPrefix)-\(index)-".utf8)
            releasePrefix = Array("RELEASE network=\(r.plan.network) owner=\(r.plan.ownerPrefix)-\(index)-".utf8)
        case .agent(let a):
            let host = "\(a.plan.hostPrefix)-\(a.number)"
            acquirePrefix = Array("ACQUIRE network=\(a.plan.network) host=\(host) owner=\(host)-".utf8)
        case .watcher:
            break
        }
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if inbound == nil {
            inbound = buffer
        } else {
            inbound!.writeBuffer(&buffer)
        }
        var consumed = 0
        inbound!.withUnsafeReadableBytes { bytes in
            var lineStart = 0
            while let newline = Self.findNewline(bytes, from: lineStart) {
                var end = newline
                if end > lineStart && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                handleLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<end]))
                lineStart = newline + 1
            }
            consumed = lineStart
        }
        inbound!.moveReaderIndex(forwardBy: consumed)
        if inbound!.readableBytes == 0 {
            inbound = nil
        } else if inbound!.readerIndex > 1 << 16 {
            inbound!.discardReadBytes()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase != .finished {
            if !pending.isEmpty { result.errors["connection-lost", default: 0] += pending.count }
            if case .watcher = role {} else if !stopped { result.errors["connection-closed-by-coordinator", default: 0] += 1 }
            finish(close: false)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        result.errors["socket-error", default: 0] += 1
        context.close(promise: nil)
    }

    private static func findNewline(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    // MARK: control (called on the event loop)

    func startLoad(startNs: UInt64, deadlineNs: UInt64) {
        guard phase == .waiting, case .load(let r) = role, let context else { return }
        phase = .running
        self.startNs = startNs
        self.deadlineNs = deadlineNs
        let loop = context.eventLoop.assumeIsolated()
        // Give up on replies that never come: the run stays bounded in time.
        watchTimer = loop.scheduleTask(deadline: .uptimeNanoseconds(deadlineNs + 30_000_000_000)) {
            if self.phase != .finished {
                self.result.errors["timeout", default: 0] += self.pending.count
                self.finish(close: true)
            }
        }
        if r.plan.intervalNs == 0 {
            loop.scheduleTask(deadline: .uptimeNanoseconds(startNs)) {
                let now = BenchClock.nowNs()
                for _ in 0..<r.plan.pipeline where !self.stopped { self.sendAcquire(intended: now) }
                self.flushNow()
                self.maybeFinish()
            }
        } else {
            nextIntendedNs = r.plan.firstIntendedNs(startNs: startNs, connection: index)
            scheduleTick()
        }
    }

    func resetHeartbeats() { result.heartbeatLatencies.removeAll() }

    func stop() {
        stopped = true
        finish(close: true)
    }

    // MARK: sending

    private func write(_ bytes: [UInt8], suffix: Int32? = nil) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 16)
        buffer.writeBytes(bytes)
        if let suffix { buffer.writeString(String(suffix)) }
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    private func writeLine(_ text: String) {
        write(Array(text.utf8))
    }

    private func flushNow() {
        if needsFlush {
            needsFlush = false
            context?.flush()
        }
    }

    /// Sends one ACQUIRE (load role) unless the deadline passed or the pool budget is spent. Returns whether it did.
    @discardableResult
    private func sendAcquire(intended: UInt64) -> Bool {
        guard case .load(let r) = role else { return false }
        let now = BenchClock.nowNs()
        if stopped || now >= deadlineNs {
            stopped = true
            return false
        }
        guard r.shared.take(now: now) else {
            stopped = true
            return false
        }
        let seq = nextSeq
        nextSeq += 1
        write(acquirePrefix, suffix: seq)
        pending.append(Pending(kind: .acquire, seq: seq, t: intended))
        return true
    }

    private func scheduleTick() {
        guard let context, case .load(let r) = role else { return }
        context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(nextIntendedNs)) {
            let now = BenchClock.nowNs()
            while !self.stopped && self.nextIntendedNs <= now {
                if self.nextIntendedNs >= self.deadlineNs { self.stopped = true; break }
                if !self.sendAcquire(intended: self.nextIntendedNs) { break }
                self.result.sendLags.append(now &- self.nextIntendedNs)
                self.nextIntendedNs += r.plan.intervalNs
            }
            if self.nextIntendedNs >= self.deadlineNs { self.stopped = true }
            self.flushNow()
            if self.stopped { self.maybeFinish() } else { self.scheduleTick() }
        }
    }

    private func scheduleHeartbeat(_ delay: UInt64) {
        guard let context else { return }
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay))) {
            guard !self.stopped, self.phase == .running, case .agent(let a) = self.role else { return }
            self.write(self.heartbeatLine)
            self.pending.append(Pending(kind: .heartbeat, seq: 0, t: BenchClock.nowNs()))
            self.flushNow()
            self.scheduleHeartbeat(a.plan.heartbeatNs)
        }
    }

    private func signalReady() {
        guard !readySignalled else { return }
        readySignalled = true
        ready.succeed(())
    }

    private func finish(close: Bool) {
        guard phase != .finished else { return }
        phase = .finished
        stopped = true
        watchTimer?.cancel()
        if !readySignalled {
            readySignalled = true
            ready.fail(NetleaseError(.unavailable, "bench connection \(index) ended before it was ready: \(result.errors)"))
        }
        if close { context?.close(promise: nil) }
        done.succeed(result)
    }

    private func maybeFinish() {
        guard phase == .running, stopped, pending.isEmpty, case .load = role else { return }
        finish(close: true)
    }

    // MARK: replies

    private func handleLine(_ line: UnsafeRawBufferPointer) {
        if line.isEmpty { return }
        if skipRecords > 0 {
            skipRecords -= 1
            if skipRecords == 0, case .watcher = role { signalReady() }
            return
        }
        switch phase {
        case .greeting:
            if Self.hasPrefix(line, "ERR ") {
                result.errors[Self.errorCode(line), default: 0] += 1
                finish(close: true)
                return
            }
            if let secret {
                phase = .auth
                writeLine("AUTH secret=\(secret)")
                flushNow()
            } else {
                authenticated()
            }
        case .auth:
            guard Self.hasPrefix(line, "OK") else {
                result.errors["auth:" + Self.errorCode(line), default: 0] += 1
                finish(close: true)
                return
            }
            authenticated()
        case .waiting, .finished:
            if case .watcher = role { result.events += 1 }
        case .running:
            if case .watcher = role, pending.isEmpty {
                result.events += 1  // an EVENT line
                return
            }
            guard let p = pending.popFirst() else {
                result.errors["unexpected-reply", default: 0] += 1
                return
            }
            reply(to: p, line: line)
            maybeFinish()
        }
    }

    private func authenticated() {
        switch role {
        case .load:
            phase = .waiting
            signalReady()
        case .agent(let a):
            phase = .running
            let host = "\(a.plan.hostPrefix)-\(a.number)"
            // Underlay addresses 100.64.0.0/10 (shared address space): unique per agent, never routed here.
            let underlay = IPv4Address(0x6440_0000 &+ UInt32(a.number) &+ 1)
            writeLine("JOIN host=\(host) underlay=\(underlay) networks=\(a.plan.network)")
            pending.append(Pending(kind: .join, seq: 0, t: BenchClock.nowNs()))
            flushNow()
        case .watcher:
            phase = .running
            writeLine("WATCH")
            pending.append(Pending(kind: .watch, seq: 0, t: BenchClock.nowNs()))
            flushNow()
        }
    }

    private func reply(to p: Pending, line: UnsafeRawBufferPointer) {
        let now = BenchClock.nowNs()
        result.lastReplyNs = max(result.lastReplyNs, now)
        let ok = Self.hasPrefix(line, "OK")
        switch p.kind {
        case .acquire:
            guard case .load(let r) = role else {
                agentAcquired(ok: ok, line: line, sent: p.t, now: now)
                return
            }
            if ok {
                result.acquireLatencies.append(now &- p.t)
                if now <= deadlineNs { result.acquiresInWindow += 1 }
                let address = Self.address(in: line)
                if r.plan.release {
                    write(releasePrefix, suffix: p.seq)
                    pending.append(Pending(kind: .release, seq: p.seq, t: now))
                } else {
                    result.held.append((p.seq, address))
                    if r.plan.intervalNs == 0 { sendAcquire(intended: now) }
                }
            } else {
                result.errors[Self.errorCode(line), default: 0] += 1
                if r.plan.intervalNs == 0 { sendAcquire(intended: now) }
            }
        case .release:
            if ok {
                result.releaseLatencies.append(now &- p.t)
                if now <= deadlineNs { result.releasesInWindow += 1 }
            } else {
                result.errors["release:" + Self.errorCode(line), default: 0] += 1
                result.releaseFailedSeqs.append(p.seq)
            }
            if case .load(let r) = role, r.plan.intervalNs == 0 { sendAcquire(intended: now) }
        case .join:
            guard ok, case .agent(let a) = role else {
                result.errors["join:" + Self.errorCode(line), default: 0] += 1
                finish(close: true)
                return
            }
            result.joinLatencies.append(now &- p.t)
            epoch = Self.intField(in: line, key: "epoch") ?? 0
            skipRecords = Int(Self.intField(in: line, key: "count") ?? 0)
            let host = "\(a.plan.hostPrefix)-\(a.number)"
            acquirePrefix = Array("ACQUIRE network=\(a.plan.network) host=\(host) epoch=\(epoch) owner=\(host)-".utf8)
            heartbeatLine = Array("HEARTBEAT host=\(host) epoch=\(epoch)".utf8)
            if a.plan.leasesEach == 0 {
                agentReady(a)
            } else {
                for _ in 0..<min(8, a.plan.leasesEach) { agentSendAcquire(a) }
                flushNow()
            }
        case .heartbeat:
            if ok {
                result.heartbeatLatencies.append(now &- p.t)
            } else {
                result.errors["heartbeat:" + Self.errorCode(line), default: 0] += 1
            }
        case .watch:
            guard ok else {
                result.errors["watch:" + Self.errorCode(line), default: 0] += 1
                finish(close: true)
                return
            }
            skipRecords = Int(Self.intField(in: line, key: "count") ?? 0)
            if skipRecords == 0 { signalReady() }
        }
    }

    private func agentSendAcquire(_ a: AgentRole) {
        guard Int(nextSeq) < a.plan.leasesEach else { return }
        let seq = nextSeq
        nextSeq += 1
        write(acquirePrefix, suffix: seq)
        pending.append(Pending(kind: .acquire, seq: seq, t: BenchClock.nowNs()))
    }

    private func agentAcquired(ok: Bool, line: UnsafeRawBufferPointer, sent: UInt64, now: UInt64) {
        guard case .agent(let a) = role else { return }
        if ok {
            result.acquireLatencies.append(now &- sent)
        } else {
            result.errors["acquire:" + Self.errorCode(line), default: 0] += 1
        }
        acquiredByAgent += 1
        agentSendAcquire(a)
        if acquiredByAgent == a.plan.leasesEach { agentReady(a) }
    }

    private func agentReady(_ a: AgentRole) {
        signalReady()
        // Heartbeats start at a random point of the first interval, as jittered agents would.
        scheduleHeartbeat(UInt64.random(in: 1...max(1, a.plan.heartbeatNs)))
    }

    // MARK: byte parsing

    private static func hasPrefix(_ line: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard line.count >= count else { return false }
        return memcmp(line.baseAddress!, prefix.utf8Start, count) == 0
    }

    /// The code of an `ERR <code> <message>` line.
    private static func errorCode(_ line: UnsafeRawBufferPointer) -> String {
        guard hasPrefix(line, "ERR ") else { return "malformed-reply" }
        var end = 4
        while end < line.count && line[end] != UInt8(ascii: " ") { end += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: line[4..<end]), as: UTF8.self)
    }

    /// Start of the value of ` key=` in a reply line.
    private static func valueStart(in line: UnsafeRawBufferPointer, key: String) -> Int? {
        let needle = Array(" \(key)=".utf8)
        guard line.count >= needle.count else { return nil }
        var i = 0
        outer: while i <= line.count - needle.count {
            for j in 0..<needle.count where line[i + j] != needle[j] {
                i += 1
                continue outer
            }
            return i + needle.count
        }
        return nil
    }

    private static func intField(in line: UnsafeRawBufferPointer, key: String) -> Int64? {
        guard var i = valueStart(in: line, key: key) else { return nil }
        var value: Int64 = 0
        var digits = 0
        while i < line.count, line[i] >= 0x30, line[i] <= 0x39 {
            value = value * 10 + Int64(line[i] - 0x30)
            i += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// The `address=A.B.C.D/P` of a LEASE reply as a 32-bit value (0 when absent).
    private static func address(in line: UnsafeRawBufferPointer) -> UInt32 {
        guard var i = valueStart(in: line, key: "address") else { return 0 }
        var value: UInt32 = 0
        var octet: UInt32 = 0
        while i < line.count {
            let c = line[i]
            if c >= 0x30 && c <= 0x39 {
                octet = octet * 10 + UInt32(c - 0x30)
            } else if c == UInt8(ascii: ".") {
                value = value << 8 | octet
                octet = 0
            } else {
                break
            }
            i += 1
        }
        return value << 8 | octet
    }
}
