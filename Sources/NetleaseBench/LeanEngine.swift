import NIOCore
import NIOPosix
import NetleaseTransport

/// Runs `BenchHandler` connections on its own event loops: connects them, starts them together, collects what
/// each saw.
final class LeanEngine: Sendable {
    let group: MultiThreadedEventLoopGroup

    init(threads: Int) { group = MultiThreadedEventLoopGroup(numberOfThreads: threads) }

    func shutdown() { try? group.syncShutdownGracefully() }

    /// A connection in the making: its handler (bound to its loop) and the futures it completes.
    private struct Connection {
        var handler: NIOLoopBound<BenchHandler>
        var ready: EventLoopFuture<Void>
        var done: EventLoopFuture<ConnectionResult>
    }

    private func connect(
        _ endpoint: Endpoint,
        secret: String?,
        index: Int,
        role: BenchHandler.Role
    )
        async throws -> Connection
    {
        let loop = group.next()
        let ready = loop.makePromise(of: Void.self)
        let done = loop.makePromise(of: ConnectionResult.self)
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        BenchHandler(index: index, role: role, secret: secret, ready: ready, done: done)
                    )
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: BenchHandler.self),
                eventLoop: channel.eventLoop
            )
        }.get()
        return Connection(handler: handler, ready: ready.futureResult, done: done.futureResult)
    }

    /// Connects `count` handlers in waves of 64, each wave ready (authenticated, joined, watching: whatever its
    /// role needs) before the next starts, so the coordinator's accept backlog is never the bottleneck.
    private func connectInWaves(
        _ count: Int,
        endpoint: Endpoint,
        secret: String?,
        role: (Int) -> BenchHandler.Role
    ) async throws -> [Connection] {
        var connections: [Connection] = []
        var index = 0
        while index < count {
            let wave = index..<min(index + 64, count)
            for i in wave {
                connections.append(try await connect(endpoint, secret: secret, index: i, role: role(i)))
            }
            for connection in connections[wave] { try await connection.ready.get() }
            index = wave.upperBound
        }
        return connections
    }

    func run(_ plan: LoadPlan) async throws -> LoadOutcome {
        let shared = RunShared(budget: plan.budget)
        var connections: [Connection] = []
        for index in 0..<plan.connections {
            connections.append(
                try await connect(
                    plan.target.endpoint,
                    secret: plan.target.secret,
                    index: index,
                    role: .load(LoadRole(plan: plan, shared: shared))
                )
            )
        }
        for connection in connections { try await connection.ready.get() }
        let startNs = BenchClock.nowNs() + 2_000_000
        let deadlineNs = startNs + UInt64(plan.duration * 1e9)
        for connection in connections {
            let bound = connection.handler
            bound.eventLoop.execute { bound.value.startLoad(startNs: startNs, deadlineNs: deadlineNs) }
        }
        var results: [ConnectionResult] = []
        for connection in connections { results.append(try await connection.done.get()) }
        return LoadOutcome(
            results,
            exhaustedAt: shared.exhaustedAtNs.load(ordering: .relaxed),
            startNs: startNs,
            deadlineNs: deadlineNs
        )
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
        let started = BenchClock.nowNs()
        // Agents connect, join and acquire first; then the watchers.
        let target = plan.target
        let agents = try await connectInWaves(plan.agents, endpoint: target.endpoint, secret: target.secret) {
            .agent(AgentRole(plan: plan, number: $0))
        }
        let agentsUp = BenchClock.nowNs()
        let watchers = try await connectInWaves(plan.agents, endpoint: target.endpoint, secret: target.secret) { _ in
            .watcher
        }
        let watchersUp = BenchClock.nowNs()
        // Heartbeat latency is reported for the steady state only, not while other agents were still joining.
        for agent in agents {
            let bound = agent.handler
            bound.eventLoop.execute { bound.value.resetHeartbeats() }
        }
        try await Task.sleep(for: .seconds(plan.holdSeconds))
        let steady = onSteady()
        for connection in agents + watchers {
            let bound = connection.handler
            bound.eventLoop.execute { bound.value.stop() }
        }
        var outcome = AgentsOutcome(
            bringUpSeconds: Double(agentsUp - started) / 1e9,
            watchersUpSeconds: Double(watchersUp - agentsUp) / 1e9
        )
        outcome.steadyRSS = steady
        for agent in agents {
            let r = try await agent.done.get()
            outcome.joinLatencies += r.joinLatencies
            outcome.acquireLatencies += r.acquireLatencies
            outcome.heartbeatLatencies += r.heartbeatLatencies
            for (code, n) in r.errors { outcome.errors[code, default: 0] += n }
        }
        for watcher in watchers {
            let r = try await watcher.done.get()
            outcome.events += r.events
            for (code, n) in r.errors { outcome.errors["watch:" + code, default: 0] += n }
        }
        return outcome
    }
}
