import NIOCore
import NetleaseCore
import NetleaseWire

#if canImport(Glibc)
import Glibc
#endif

/// A connection of a load run: its plan and the budget it shares with the run's other connections.
struct LoadRole: Sendable {
    let plan: LoadPlan
    let shared: RunShared
}

/// A connection that acts as agent `number` of an agents run.
struct AgentRole: Sendable {
    let plan: AgentPlan
    let number: Int
}

/// One benchmark connection. Lives on its event loop only.
///
/// It speaks the protocol through NetleaseWire on two paths. The few lines that set a connection up (greeting,
/// AUTH, JOIN, WATCH) are rendered from `Request` and read with `Greeting` and `Reply.parseHead` as they come. The
/// lines of the measured phase (ACQUIRE, RELEASE, HEARTBEAT) are rendered once per connection into
/// `RequestTemplate`s or bytes, and their replies read in place with `ReplyHeadView`: per request the handler
/// allocates only the outgoing buffer, per reply nothing, so the client takes as little CPU from the coordinator
/// as it can on a shared machine.
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

    /// A request waiting for its reply: what it was, its owner sequence number, and when it was meant to go out.
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
    /// Load role: from the start. Agent role: once JOIN returned the epoch its claims carry.
    private var acquireTemplate: RequestTemplate?
    private var releaseTemplate: RequestTemplate?
    private var heartbeatLine: [UInt8] = []
    private var acquiredByAgent = 0
    private var watchTimer: Scheduled<Void>?

    init(
        index: Int,
        role: Role,
        secret: String?,
        ready: EventLoopPromise<Void>,
        done: EventLoopPromise<ConnectionResult>
    ) {
        self.index = index
        self.role = role
        self.secret = secret
        self.ready = ready
        self.done = done
        result = ConnectionResult(index: index)
        if case .load(let r) = role {
            let owner = r.plan.ownerBase(connection: index)
            acquireTemplate = RequestTemplate(.acquire(AcquireRequest(network: r.plan.target.network, owner: owner)))
            releaseTemplate = RequestTemplate(.release(ReleaseRequest(network: r.plan.target.network, owner: owner)))
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
        // Framing only: split at LF and drop a CR before it, in place; each line is read where it lies.
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
            if case .watcher = role {
            } else if !stopped {
                result.errors["connection-closed-by-coordinator", default: 0] += 1
            }
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

    /// Writes `template`'s request with `number` appended to its owner.
    private func write(_ template: RequestTemplate, number: Int32) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: template.head.count + 11 + template.tail.count)
        buffer.writeBytes(template.head)
        buffer.writeString(String(number))  // at most 11 bytes: an inline small string, no allocation
        buffer.writeBytes(template.tail)
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    /// Writes a line rendered before, LF included.
    private func write(line bytes: [UInt8]) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    /// Renders and writes a request of the setup phase.
    private func write(_ request: Request) {
        write(line: Array((request.rendered + "\n").utf8))
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
        guard case .load(let r) = role, let acquireTemplate else { return false }
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
        write(acquireTemplate, number: seq)
        pending.append(Pending(kind: .acquire, seq: seq, t: intended))
        return true
    }

    private func scheduleTick() {
        guard let context, case .load(let r) = role else { return }
        context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(nextIntendedNs)) {
            let now = BenchClock.nowNs()
            while !self.stopped && self.nextIntendedNs <= now {
                if self.nextIntendedNs >= self.deadlineNs {
                    self.stopped = true
                    break
                }
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
            self.write(line: self.heartbeatLine)
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
            ready.fail(
                NetleaseError(
                    .unavailable,
                    "bench connection \(index) ended before it was ready: \(result.errors)"
                )
            )
        }
        if close { context?.close(promise: nil) }
        done.succeed(result)
    }

    private func maybeFinish() {
        guard phase == .running, stopped, pending.isEmpty, case .load = role else { return }
        finish(close: true)
    }

    // MARK: replies

    /// The key a failed reply is counted under: its error code, or `malformed-reply` for a line that is neither OK
    /// nor ERR. Nil for OK.
    private static func failure(_ status: ReplyHeadView.Status) -> String? {
        switch status {
        case .ok: nil
        case .error(let code): code.rawValue
        case .malformed: "malformed-reply"
        }
    }

    /// A setup reply through the full parser, for its fields; nil when the line is not a reply.
    private static func parseHead(_ line: UnsafeRawBufferPointer) -> Reply.Head? {
        try? Reply.parseHead(Substring(String(decoding: line, as: UTF8.self)))
    }

    private static func failure(_ head: Reply.Head?) -> String? {
        switch head {
        case .ok?: nil
        case .error(let error)?: error.code.rawValue
        case nil: "malformed-reply"
        }
    }

    private func handleLine(_ line: UnsafeRawBufferPointer) {
        if line.isEmpty { return }
        if skipRecords > 0 {
            skipRecords -= 1
            if skipRecords == 0, case .watcher = role { signalReady() }
            return
        }
        switch phase {
        case .greeting:
            greeted(line)
        case .auth:
            if let failure = Self.failure(Self.parseHead(line)) {
                result.errors["auth:" + failure, default: 0] += 1
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

    /// The server's first line: a greeting, or `ERR` when it refuses the connection (e.g. `overloaded`).
    private func greeted(_ line: UnsafeRawBufferPointer) {
        if case .error(let code) = ReplyHeadView(line).status {
            result.errors[code.rawValue, default: 0] += 1
            finish(close: true)
            return
        }
        guard (try? Greeting(line: Substring(String(decoding: line, as: UTF8.self)))) != nil else {
            result.errors["malformed-greeting", default: 0] += 1
            finish(close: true)
            return
        }
        if let secret {
            phase = .auth
            write(.auth(secret: secret))
            flushNow()
        } else {
            authenticated()
        }
    }

    private func authenticated() {
        switch role {
        case .load:
            phase = .waiting
            signalReady()
        case .agent(let a):
            phase = .running
            write(
                .join(
                    host: a.plan.host(a.number),
                    underlay: AgentPlan.underlay(a.number),
                    networks: [a.plan.target.network]
                )
            )
            pending.append(Pending(kind: .join, seq: 0, t: BenchClock.nowNs()))
            flushNow()
        case .watcher:
            phase = .running
            write(Request.watch)
            pending.append(Pending(kind: .watch, seq: 0, t: BenchClock.nowNs()))
            flushNow()
        }
    }

    private func reply(to p: Pending, line: UnsafeRawBufferPointer) {
        let now = BenchClock.nowNs()
        result.lastReplyNs = max(result.lastReplyNs, now)
        switch p.kind {
        case .acquire:
            let view = ReplyHeadView(line)
            guard case .load(let r) = role else {
                agentAcquired(failure: Self.failure(view.status), sent: p.t, now: now)
                return
            }
            if let failure = Self.failure(view.status) {
                result.errors[failure, default: 0] += 1
                if r.plan.intervalNs == 0 { sendAcquire(intended: now) }
                return
            }
            result.acquireLatencies.append(now &- p.t)
            if now <= deadlineNs { result.acquiresInWindow += 1 }
            if r.plan.release, let releaseTemplate {
                write(releaseTemplate, number: p.seq)
                pending.append(Pending(kind: .release, seq: p.seq, t: now))
            } else {
                // A reply without a readable address is kept as 0: the verification reports it as moved.
                result.held.append((p.seq, view.leaseAddress?.address.value ?? 0))
                if r.plan.intervalNs == 0 { sendAcquire(intended: now) }
            }
        case .release:
            if let failure = Self.failure(ReplyHeadView(line).status) {
                result.errors["release:" + failure, default: 0] += 1
                result.releaseFailedSeqs.append(p.seq)
            } else {
                result.releaseLatencies.append(now &- p.t)
                if now <= deadlineNs { result.releasesInWindow += 1 }
            }
            if case .load(let r) = role, r.plan.intervalNs == 0 { sendAcquire(intended: now) }
        case .join:
            joined(Self.parseHead(line), sent: p.t, now: now)
        case .heartbeat:
            if let failure = Self.failure(ReplyHeadView(line).status) {
                result.errors["heartbeat:" + failure, default: 0] += 1
            } else {
                result.heartbeatLatencies.append(now &- p.t)
            }
        case .watch:
            let head = Self.parseHead(line)
            guard case .ok(_, let count)? = head else {
                result.errors["watch:" + (Self.failure(head) ?? ""), default: 0] += 1
                finish(close: true)
                return
            }
            // The current hosts follow as records; the watcher is ready after them.
            skipRecords = count ?? 0
            if skipRecords == 0 { signalReady() }
        }
    }

    /// JOIN's reply: its epoch goes into every later claim, its records (the bridge leases) are skipped.
    private func joined(_ head: Reply.Head?, sent: UInt64, now: UInt64) {
        guard case .agent(let a) = role, case .ok(let fields, let count)? = head,
            let epoch = try? fields.requireInt("epoch")
        else {
            result.errors["join:" + (Self.failure(head) ?? "malformed-reply"), default: 0] += 1
            finish(close: true)
            return
        }
        result.joinLatencies.append(now &- sent)
        skipRecords = count ?? 0
        let host = a.plan.host(a.number)
        let claim = HostClaim(host: host, epoch: epoch)
        acquireTemplate = RequestTemplate(
            .acquire(AcquireRequest(network: a.plan.target.network, owner: a.plan.ownerBase(a.number), claim: claim))
        )
        heartbeatLine = Array((Request.heartbeat(host: host, epoch: epoch).rendered + "\n").utf8)
        if a.plan.leasesEach == 0 {
            agentReady(a)
        } else {
            for _ in 0..<min(8, a.plan.leasesEach) { agentSendAcquire(a) }
            flushNow()
        }
    }

    private func agentSendAcquire(_ a: AgentRole) {
        guard Int(nextSeq) < a.plan.leasesEach, let acquireTemplate else { return }
        let seq = nextSeq
        nextSeq += 1
        write(acquireTemplate, number: seq)
        pending.append(Pending(kind: .acquire, seq: seq, t: BenchClock.nowNs()))
    }

    private func agentAcquired(failure: String?, sent: UInt64, now: UInt64) {
        guard case .agent(let a) = role else { return }
        if let failure {
            result.errors["acquire:" + failure, default: 0] += 1
        } else {
            result.acquireLatencies.append(now &- sent)
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
}
