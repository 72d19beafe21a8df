import Foundation
import Logging
import NetleaseAgent
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import ServiceLifecycle
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// An agent given several coordinators on one PostgreSQL database (real `netlease coordinator` processes) goes
/// where a standby's `not-leader leader=…` sends it without waiting out its backoff, and after the leader is killed
/// joins the new leader with a new epoch and keeps its leases.
final class AgentLeaderFollowingTests: XCTestCase {
    private var server: PostgresTestServer!
    private var database: String?
    private var directory: URL!
    private var coordinators: [CoordinatorProcess] = []
    private var group: ServiceGroup?
    private var agentTask: Task<Void, Error>?
    private var socket: NotifySocketRecorder?

    override func setUp() async throws {
        server = try PostgresTestServer.sharedForTest(fail: { XCTFail($0) }, skip: { XCTSkip($0) })
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("agent-leader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        await group?.triggerGracefulShutdown()
        if let agentTask { _ = try? await withDeadline("the agent's graceful stop") { try await agentTask.value } }
        socket?.close()
        for coordinator in coordinators { coordinator.cleanUp() }
        if let database { server?.dropDatabase(database) }
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func testTheAgentJoinsTheLeaderAStandbyNamesAndTheNewLeaderAfterAKill() async throws {
        let name = try server.makeDatabase(prefix: "a")
        database = name
        let url = server.url(database: name)
        let first = try await startCoordinator("c1", url)
        let secret = try String(contentsOfFile: first.secretFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await waitForLeader(among: [first.endpoint], secret: secret)
        let second = try await startCoordinator("c2", url)
        // The standby knows the leader before the agent asks it (its not-leader reply names it).
        try await withDeadline("the standby naming the leader") {
            while true {
                let stats = try? await NetleaseConnection.connect(to: second.endpoint, secret: secret) {
                    try await $0.stats()
                }
                if stats?["leader"] == first.address { return }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await NetleaseConnection.connect(to: first.endpoint, secret: secret) { connection in
            _ = try await connection.createNetwork(
                NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!, leaseTTL: 3)
            )
        }

        // The standby first, then an address nobody answers, then the leader. The configured backoff (30 s) is
        // longer than every wait below: the agent gets there only by following the hint, and after the kill only
        // because its pauses stay below a third of the served TTL (1 s).
        let nobody = Endpoint(host: "127.0.0.1", port: try LoopbackPort.free())
        let socket = try NotifySocketRecorder(path: directory.appendingPathComponent("notify").path)
        self.socket = socket
        let agent = try makeAgent(coordinators: [second.endpoint, nobody, first.endpoint], secret: secret)
        let ready = await socket.first(within: defaultTestDeadline) { $0.has("READY=1") }
        let statuses = socket.messages.compactMap { $0.value(of: "STATUS") }
        XCTAssertNotNil(ready, "the agent did not get ready: \(statuses)")
        let joined = statuses.filter { $0.hasPrefix("joined ") }
        XCTAssertEqual(joined.count, 1, "\(statuses)")
        XCTAssertTrue(joined.first?.hasPrefix("joined \(first.address) as epoch ") == true, "\(statuses)")
        XCTAssertFalse(statuses.contains("connecting to coordinator \(nobody)"), "the hint was not followed")
        let epoch = try XCTUnwrap(joined.first.flatMap(Self.epoch(in:)), "\(joined)")

        let path = agent.configuration.socketPath
        let leased = try await withDeadline("a lease through the agent") {
            try await NetleaseConnection.connect(socketPath: path) {
                try WireCodec.lease(
                    from: try await $0.send(LocalRequest.acquire(network: "prod", owner: "c1", ifname: "eth0")).fields
                )
            }
        }

        first.process.signal(SIGKILL)
        first.process.wait()
        let killed = ContinuousClock.now
        let rejoined = await socket.first(within: .seconds(30)) {
            $0.value(of: "STATUS")?.hasPrefix("joined \(second.address) as epoch ") == true
        }
        let after = socket.messages.compactMap { $0.value(of: "STATUS") }
        let rejoin = try XCTUnwrap(rejoined, "the agent did not join the new leader: \(after)")
        let serving = await socket.first(within: defaultTestDeadline) {
            $0.arrived >= rejoin.arrived && $0.value(of: "STATUS")?.hasPrefix("serving prod") == true
        }
        XCTAssertNotNil(serving, "the agent did not serve again: \(after)")
        print("leader killed: the agent served again from the new leader after \(ContinuousClock.now - killed)")

        try await NetleaseConnection.connect(to: second.endpoint, secret: secret) { connection in
            let hosts = try await connection.hosts()
            XCTAssertEqual(hosts.map(\.name), ["h1"])
            XCTAssertEqual(hosts.first?.state, .up)
            let newEpoch = try XCTUnwrap(hosts.first?.epoch)
            XCTAssertGreaterThan(newEpoch, epoch, "a join on the new leader takes a new epoch")
            XCTAssertEqual(rejoin.value(of: "STATUS").flatMap(Self.epoch(in:)), newEpoch)
            // The lease is where it was, held by this host; the old epoch is fenced.
            let leases = try await connection.leases(.init(network: "prod", owner: "c1"))
            XCTAssertEqual(leases.map(\.address), [leased.address])
            XCTAssertEqual(leases.first?.host, "h1")
            do {
                _ = try await connection.heartbeat(host: "h1", epoch: epoch)
                XCTFail("the old epoch was accepted after the rejoin")
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .staleEpoch, "\(error)")
            }
        }
        // The agent still answers for its container with the same address.
        let again = try await withDeadline("the same lease again") {
            try await NetleaseConnection.connect(socketPath: path) {
                try WireCodec.lease(
                    from: try await $0.send(LocalRequest.acquire(network: "prod", owner: "c1", ifname: "eth0")).fields
                )
            }
        }
        XCTAssertEqual(again.address, leased.address)
    }

    /// N of a status "joined HOST:PORT as epoch N; …".
    private static func epoch(in status: String) -> Int64? {
        guard let range = status.range(of: " as epoch ") else { return nil }
        return Int64(status[range.upperBound...].prefix { $0.isNumber })
    }

    private func startCoordinator(_ name: String, _ url: String) async throws -> CoordinatorProcess {
        let coordinator = try await CoordinatorProcess.start(
            binary: try Executables.path(),
            directory: directory.appendingPathComponent(name).path,
            arguments: ["--store", url]
        )
        coordinators.append(coordinator)
        return coordinator
    }

    private func waitForLeader(among endpoints: [Endpoint], secret: String) async throws {
        try await withDeadline("a leader among \(endpoints)") {
            while await NetleaseConnection.leading(among: endpoints, secret: secret) == nil {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Starts an agent (recording host network, nothing answering probes) reporting to the notify recorder.
    private func makeAgent(coordinators: [Endpoint], secret: String) throws -> Agent {
        let notifier = try XCTUnwrap(SystemdNotifier(environment: ["NOTIFY_SOCKET": socket!.environmentValue]))
        var logger = Logger(label: "test.agent")
        logger.logLevel = .critical
        let configuration = AgentConfiguration(
            coordinators: coordinators,
            secret: secret,
            host: "h1",
            underlay: IPv4Address(10, 9, 0, 1),
            networks: ["prod"],
            socketPath: directory.appendingPathComponent("agent.sock").path,
            stateDirectory: directory.appendingPathComponent("state").path,
            heartbeatInterval: .milliseconds(200),
            reconnectDelay: .seconds(30)...(.seconds(30))
        )
        let agent = try Agent(
            configuration: configuration,
            hostNetwork: ObservedHostNetwork(),
            prober: ScriptedARPProber(),
            logger: logger,
            notifier: notifier
        )
        let group = ServiceGroup(
            services: [agent, SystemdNotifyService(notifier: notifier)],
            logger: Logger(label: "test.agent.group")
        )
        self.group = group
        agentTask = Task { try await group.run() }
        return agent
    }
}
