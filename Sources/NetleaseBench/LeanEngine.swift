import NIOCore
import NIOPosix
import NetleaseTransport

final class LeanEngine: Sendable {
    let group: MultiThreadedEventLoopGroup

    init(threads: Int) { group = MultiThreadedEventLoopGroup(numberOfThreads: threads) }

    func shutdown() { try? group.syncShutdownGracefully() }

    private func connect(_ endpoint: Endpoint, on loop: any EventLoop,
                         _ makeHandler: @escaping @Sendable () -> BenchHandler) async throws -> NIOLoopBound<BenchHandler> {
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        return try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: BenchHandler.self), eventLoop: channel.eventLoop)
        }.get()
    }

    func run(_ plan: LoadPlan) async throws -> LoadOutcome {
        let shared = RunShared(budget: plan.budget)
        var handlers: [(NIOLoopBound<BenchHandler>, EventLoopFuture<Void>, EventLoopFuture<ConnectionResult>)] = []
        for index in 0..<plan.connections {
            let loop = group.next()
            let ready = loop.makePromise(of: Void.self)
            let done = loop.makePromise(of: ConnectionResult.self)
            let role = BenchHandler.Role.load(LoadRole(plan: plan, shared: shared))
            let bound = try await connect(plan.endpoint, on: loop) {
                BenchHandler(index: index, role: role, secret: plan.secret, ready: ready, done: done)
            }
            handlers.append((bound, ready.futureResult, done.futureResult))
        }
        for (_, ready, _) in handlers { try await ready.get() }
        let startNs = BenchSupport.nowNs() + 2_000_000
        let deadlineNs = startNs + UInt64(plan.duration * 1e9)
        for (bound, _, _) in handlers {
            bound.eventLoop.execute { bound.value.startLoad(startNs: startNs, deadlineNs: deadlineNs) }
        }
        var results: [ConnectionResult] = []
        for (_, _, done) in handlers { results.append(try await done.get()) }
        return LoadOutcome(results, shared: shared, startNs: startNs, deadlineNs: deadlineNs)
    }

    struct AgentsOutcome: Sendable {
        var bringUpSeconds: Double
        var watchersUpSeconds: Double
        var joinLatencies: [UInt64] = []
        var acquireLatencies: [UInt64] = []
        var heartbeatLatencies: [UInt64] = []
        var events = 0
        var errors: [String: Int] = [:]
        var steadyRSS: (rss: Int, hwm: Int)?
    }

    func runAgents(_ plan: AgentPlan, onSteady: @Sendable () -> (rss: Int, hwm: Int)?) async throws -> AgentsOutcome {
        let started = BenchSupport.nowNs()
        // Agents connect, join and acquire in waves of 64 so the accept backlog is never the bottleneck.
        var agentHandlers: [(NIOLoopBound<BenchHandler>, EventLoopFuture<ConnectionResult>)] = []
        var index = 0
        while index < plan.agents {
            let wave = index..<min(index + 64, plan.agents)
            var readies: [EventLoopFuture<Void>] = []
            for i in wave {
                let loop = group.next()
                let ready = loop.makePromise(of: Void.self)
                let done = loop.makePromise(of: ConnectionResult.self)
                let role = BenchHandler.Role.agent(AgentRole(plan: plan, number: i))
                let bound = try await connect(plan.endpoint, on: loop) {
                    BenchHandler(index: i, role: role, secret: plan.secret, ready: ready, done: done)
                }
                agentHandlers.append((bound, done.futureResult))
                readies.append(ready.futureResult)
            }
            for ready in readies { try await ready.get() }
            index = wave.upperBound
        }
        let agentsUp = BenchSupport.nowNs()
        var watcherHandlers: [(NIOLoopBound<BenchHandler>, EventLoopFuture<ConnectionResult>)] = []
        index = 0
        while index < plan.agents {
            let wave = index..<min(index + 64, plan.agents)
            var readies: [EventLoopFuture<Void>] = []
            for i in wave {
                let loop = group.next()
                let ready = loop.makePromise(of: Void.self)
                let done = loop.makePromise(of: ConnectionResult.self)
                let bound = try await connect(plan.endpoint, on: loop) {
                    BenchHandler(index: i, role: .watcher, secret: plan.secret, ready: ready, done: done)
                }
                watcherHandlers.append((bound, done.futureResult))
                readies.append(ready.futureResult)
            }
            for ready in readies { try await ready.get() }
            index = wave.upperBound
        }
        let watchersUp = BenchSupport.nowNs()
        // Heartbeat latency is reported for the steady state only, not while other agents were still joining.
        for (bound, _) in agentHandlers { bound.eventLoop.execute { bound.value.resetHeartbeats() } }
        try await Task.sleep(for: .seconds(plan.holdSeconds))
        let steady = onSteady()
        for (bound, _) in agentHandlers + watcherHandlers { bound.eventLoop.execute { bound.value.stop() } }
        var outcome = AgentsOutcome(bringUpSeconds: Double(agentsUp - started) / 1e9,
                                    watchersUpSeconds: Double(watchersUp - agentsUp) / 1e9)
        outcome.steadyRSS = steady
        for (_, done) in agentHandlers {
            let r = try await done.get()
            outcome.joinLatencies += r.joinLatencies
            outcome.acquireLatencies += r.acquireLatencies
            outcome.heartbeatLatencies += r.heartbeatLatencies
            for (code, n) in r.errors { outcome.errors[code, default: 0] += n }
        }
        for (_, done) in watcherHandlers {
            let r = try await done.get()
            outcome.events += r.events
            for (code, n) in r.errors { outcome.errors["watch:" + code, default: 0] += n }
        }
        return outcome
    }
}
