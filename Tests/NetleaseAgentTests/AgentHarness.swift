import Foundation
import HostNetwork
import Logging
import NetleaseAgent
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import ServiceLifecycle
import Synchronization
import XCTest

/// Forwards to a `RecordingHostNetwork` and announces every call, so tests await calls instead of sleeping.
final class ObservedHostNetwork: HostNetworking {
    let recorder = RecordingHostNetwork()
    let calls: AsyncStream<RecordingHostNetwork.Call>
    private let sink: AsyncStream<RecordingHostNetwork.Call>.Continuation

    init() {
        (calls, sink) = AsyncStream.makeStream(of: RecordingHostNetwork.Call.self)
    }

    func ensureNetwork(_ config: HostNetworkConfig) async throws -> NetworkReport {
        defer { sink.yield(.ensureNetwork(config)) }
        return try await recorder.ensureNetwork(config)
    }

    func verify(_ config: HostNetworkConfig) async throws -> [VerifyFailure] {
        let hold = verifyHold.withLock { hold -> VerifyHold? in
            guard let held = hold, held.matches(config) else { return nil }
            hold = nil
            return held
        }
        if let hold {
            hold.reached.yield()
            hold.reached.finish()
            for await _ in hold.released {}
        }
        defer { sink.yield(.verify(config)) }
        return try await recorder.verify(config)
    }

    private struct VerifyHold: Sendable {
        let matches: @Sendable (HostNetworkConfig) -> Bool
        let reached: AsyncStream<Void>.Continuation
        let released: AsyncStream<Void>
    }

    private let verifyHold = Mutex<VerifyHold?>(nil)

    /// Holds the next verification of a configuration that `matches`, before it looks at the host, until `release`
    /// is called; `reached` yields once it is held. Opens a window in the middle of a mesh update.
    func holdNextVerify(
        where matches: @escaping @Sendable (HostNetworkConfig) -> Bool
    ) -> (reached: AsyncStream<Void>, release: @Sendable () -> Void) {
        let (reached, reachedSink) = AsyncStream.makeStream(of: Void.self)
        let (released, releaseSink) = AsyncStream.makeStream(of: Void.self)
        verifyHold.withLock { $0 = VerifyHold(matches: matches, reached: reachedSink, released: released) }
        return (reached, { releaseSink.finish() })
    }

    func checkNamespace(_ namespace: NetworkNamespace) async throws {
        defer { sink.yield(.checkNamespace(namespace)) }
        try await recorder.checkNamespace(namespace)
    }

    func attach(_ attachment: ContainerAttachment) async throws -> AttachedContainer {
        defer { sink.yield(.attach(attachment)) }
        return try await recorder.attach(attachment)
    }

    func inspect(_ attachment: ContainerAttachment) async throws -> [String] {
        defer { sink.yield(.inspect(attachment)) }
        return try await recorder.inspect(attachment)
    }

    func containerPorts(bridge: String) async throws -> [String] {
        defer { sink.yield(.containerPorts(bridge: bridge)) }
        return try await recorder.containerPorts(bridge: bridge)
    }

    func detach(_ link: ContainerLink) async throws {
        defer { sink.yield(.detach(network: link.network, owner: link.owner)) }
        try await recorder.detach(link)
    }

    func teardown(network: String) async throws {
        defer { sink.yield(.teardown(network: network)) }
        try await recorder.teardown(network: network)
    }

    func reachable(_ address: IPv4Address) async -> Bool {
        defer { sink.yield(.reachable(address)) }
        return await recorder.reachable(address)
    }

    /// Waits for the next call that `match` maps to a value, skipping the others; fails the test after `timeout`.
    func nextCall<T: Sendable>(
        _ what: String,
        timeout: Duration = defaultTestDeadline,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ match: @escaping @Sendable (RecordingHostNetwork.Call) -> T?
    ) async throws -> T {
        let calls = self.calls
        return try await withDeadline(what, timeout: timeout, file: file, line: line) {
            for await call in calls {
                if let value = match(call) { return value }
            }
            throw DeadlineExceeded(what: "\(what) (the call stream ended)", timeout: timeout)
        }
    }
}

/// How often an agent announced readiness.
final class ReadyCount: Sendable {
    let value = Mutex(0)
}

/// An agent with the recording host network and a scripted prober, against a real coordinator on loopback.
final class AgentHarness: @unchecked Sendable {
    // @unchecked: set up in `start` before sharing; afterwards only read.
    let coordinator: CoordinatorHarness
    let network = ObservedHostNetwork()
    let prober = ScriptedARPProber()
    let directory: URL
    let agent: Agent
    let ready: AsyncStream<String>
    let notifier: SystemdNotifier?
    private let readyCount = ReadyCount()
    private var group: ServiceGroup?
    private var task: Task<Void, Error>?

    var socketPath: String { agent.configuration.socketPath }

    /// How often the agent announced readiness so far.
    var readySignals: Int { readyCount.value.withLock { $0 } }

    /// - Parameter notifier: systemd's notify socket as the agent sees it; the harness then also runs the notify
    ///   service (watchdog, STOPPING=1) beside the agent, as the executable does.
    /// - Parameter via: where the agent connects instead of the coordinator's own endpoint (a `TCPRelay` in front
    ///   of it).
    init(
        coordinator: CoordinatorHarness,
        host: String = "h1",
        underlay: IPv4Address = IPv4Address(10, 9, 0, 1),
        networks: [String] = ["prod"],
        directory: URL? = nil,
        heartbeat: Duration = .milliseconds(100),
        notifier: SystemdNotifier? = nil,
        via: Endpoint? = nil,
        poolSize: Int = 0,
        resync: Duration? = AgentConfiguration.defaultResyncInterval,
        dockerPlugin: Bool = false
    ) throws {
        self.coordinator = coordinator
        self.notifier = notifier
        self.directory =
            directory
            ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-agent-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let (ready, readySink) = AsyncStream.makeStream(of: String.self)
        self.ready = ready
        var logger = Logger(label: "test.agent")
        logger.logLevel = .critical
        var configuration = AgentConfiguration(
            coordinators: [via ?? coordinator.endpoint],
            secret: coordinator.secret?.text,
            host: host,
            underlay: underlay,
            networks: networks,
            socketPath: self.directory.appendingPathComponent("agent.sock").path,
            stateDirectory: self.directory.appendingPathComponent("state").path,
            heartbeatInterval: heartbeat,
            reconnectDelay: .milliseconds(20)...(.milliseconds(100)),
            poolSize: poolSize,
            resyncInterval: resync
        )
        if dockerPlugin { configuration.dockerPluginSocket = self.directory.appendingPathComponent("docker.sock").path }
        agent = try Agent(
            configuration: configuration,
            hostNetwork: network,
            prober: prober,
            logger: logger,
            notifier: notifier
        ) { [readyCount] path in
            readyCount.value.withLock { $0 += 1 }
            readySink.yield(path)
        }
    }

    func start() {
        let services: [any Service] = [agent] + (notifier.map { [SystemdNotifyService(notifier: $0)] } ?? [])
        let group = ServiceGroup(services: services, logger: Logger(label: "test.agent.group"))
        self.group = group
        task = Task { try await group.run() }
    }

    /// The socket path, once the local API listens; fails the test when that takes longer than `timeout`.
    func waitUntilReady(
        timeout: Duration = defaultTestDeadline,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws -> String {
        let ready = self.ready
        return try await withDeadline("the agent's local API", timeout: timeout, file: file, line: line) {
            for await path in ready { return path }
            throw NetleaseError(.unavailable, "the agent stopped before it was ready")
        }
    }

    /// Stops the agent gracefully; fails the test when it does not stop in time.
    func stop(file: StaticString = #filePath, line: UInt = #line) async {
        await group?.triggerGracefulShutdown()
        guard let task else { return }
        _ = try? await withDeadline("the agent's graceful stop", file: file, line: line) { try await task.value }
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Talks to the agent's local API; fails the test when the exchange takes longer than `timeout`.
    func local<T: Sendable>(
        timeout: Duration = defaultTestDeadline,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: @escaping @Sendable (NetleaseConnection) async throws -> T
    ) async throws -> T {
        let path = socketPath
        return try await withDeadline("a local API exchange", timeout: timeout, file: file, line: line) {
            try await NetleaseConnection.connect(socketPath: path, body)
        }
    }
}
