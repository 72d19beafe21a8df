import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Several real coordinators on one PostgreSQL database: one leads, the others stand by, answer only PING, AUTH,
/// QUIT and STATS, and take over when the leader dies — without losing an acknowledged lease or handing an address
/// out twice; a leader that was stalled past its lease answers nothing and is deposed.
final class PostgresLeadershipTests: PostgresCoordinatorTestCase {
    func testStandbyAnswersOnlyPingAuthQuitStatsAndNamesTheLeader() async throws {
        let url = try makeDatabase()
        let leaderDirectory = makeDirectory()
        let leader = try await start(leaderDirectory, ["--store", url])
        let secret = try leader.secret
        try await waitUntilLeading(leader.endpoint, secret: secret)
        let standbyDirectory = makeDirectory()
        let standby = try await start(standbyDirectory, ["--store", url])

        // The database keeps only hashes; the standby created no secret of its own and accepts the leader's.
        let stored = try sql("SELECT string_agg(role || '=' || hash, ' ' ORDER BY role) FROM secrets", in: url)
        XCTAssertTrue(stored.contains("admin=sha256:"), stored)
        XCTAssertTrue(stored.contains("reader=sha256:"), stored)
        XCTAssertFalse(stored.contains(secret), "the database holds a secret in the clear")
        XCTAssertFalse(FileManager.default.fileExists(atPath: standbyDirectory + "/cluster-secret"))

        let leaderAddress = "127.0.0.1:\(leader.endpoint.port)"
        let stats = try await stats(standby.endpoint, secret: secret)
        XCTAssertEqual(stats["role"], "standby")
        XCTAssertEqual(stats["serving"], "0")
        XCTAssertEqual(stats["leader"], leaderAddress)
        XCTAssertEqual(stats["store"], "postgres")
        XCTAssertNil(stats["leases-active"], "a standby has no ledger to count")
        let leaderStats = try await self.stats(leader.endpoint, secret: secret)
        XCTAssertEqual(leaderStats["role"], "leader")
        XCTAssertEqual(leaderStats["leader"], leaderAddress)

        try await NetleaseConnection.connect(to: standby.endpoint, secret: secret) { connection in
            try await connection.ping()
            let refusals: [(String, () async throws -> Void)] = [
                ("ACQUIRE", { _ = try await connection.acquire(AcquireRequest(network: "prod", owner: "x")) }),
                ("NETWORK LIST", { _ = try await connection.networks() }),
                (
                    "NETWORK CREATE",
                    {
                        _ = try await connection.createNetwork(
                            NetworkSpec(name: "n", subnet: IPv4Subnet("10.1.0.0/24")!)
                        )
                    }
                ),
                ("LEASES", { _ = try await connection.leases() }),
                ("HOSTS", { _ = try await connection.hosts() }),
                ("JOIN", { _ = try await connection.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1)) }),
                ("HEARTBEAT", { _ = try await connection.heartbeat(host: "h1", epoch: 1) }),
                ("BACKUP", { _ = try await connection.backup() }),
                ("WATCH", { _ = try await connection.watch() }),
            ]
            for (verb, request) in refusals {
                do {
                    try await request()
                    XCTFail("a standby answered \(verb)")
                } catch let error as NetleaseError {
                    XCTAssertEqual(error.code, .notLeader, "\(verb): \(error)")
                    XCTAssertTrue(error.message.hasPrefix("leader=\(leaderAddress) "), "\(verb): \(error.message)")
                }
            }
        }
        // Wrong secrets are still wrong on a standby.
        do {
            try await NetleaseConnection.connect(to: standby.endpoint, secret: "wrong") { try await $0.ping() }
            XCTFail("a standby accepted a wrong secret")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .authFailed)
        }
        // The leader serves.
        try await NetleaseConnection.connect(to: leader.endpoint, secret: secret) { connection in
            _ = try await connection.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
        }
    }

    /// The CLI given several coordinators (or a standby) finds the leader: it follows `not-leader leader=…` and
    /// skips addresses that do not answer.
    func testTheCLIFindsTheLeaderAmongItsAddresses() async throws {
        let url = try makeDatabase()
        let leaderDirectory = makeDirectory()
        let leader = try await start(leaderDirectory, ["--store", url])
        let secret = try leader.secret
        try await waitUntilLeading(leader.endpoint, secret: secret)
        let standby = try await start(makeDirectory(), ["--store", url])
        let secretFile = leaderDirectory + "/cluster-secret"
        let created = try netlease([
            "network", "create", "prod", "--subnet", "172.30.0.0/24", "--coordinator",
            "\(standby.endpoint)", "--secret-file", secretFile,
        ])
        XCTAssertEqual(created.status, 0, created.stderr)
        let unreachable = "127.0.0.1:\(try LoopbackPort.free())"
        for list in ["\(standby.endpoint),\(leader.endpoint)", "\(unreachable),\(standby.endpoint)"] {
            let shown = try netlease(["network", "show", "prod", "--coordinator", list, "--secret-file", secretFile])
            XCTAssertEqual(shown.status, 0, "\(list): \(shown.stderr)")
            XCTAssertTrue(shown.stdout.contains("172.30.0.0/24"), "\(list): \(shown.stdout)")
        }
        // STATS is answered where it is asked: a standby shows itself.
        let stats = try netlease([
            "stats", "--json", "--coordinator", "\(standby.endpoint)", "--secret-file",
            secretFile,
        ])
        let object = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["role"] as? String, "standby", stats.stdout)
        XCTAssertEqual(object?["leader"] as? String, "\(leader.endpoint)", stats.stdout)
    }

    /// The leader is killed with SIGKILL while a client acquires through the list of both coordinators: the standby
    /// takes over within 5 s (plus loading), every acknowledged lease is there with its address, no address is
    /// held twice, and a host that was up keeps its leases (a full TTL from the new leader).
    func testKillingTheLeaderUnderLoadLosesNothingAcknowledgedAndHandsNothingOutTwice() async throws {
        let url = try makeDatabase()
        let first = try await start(makeDirectory(), ["--store", url])
        let secret = try first.secret
        try await waitUntilLeading(first.endpoint, secret: secret)
        let second = try await start(makeDirectory(), ["--store", url])
        let endpoints = [first.endpoint, second.endpoint]
        let claim = try await NetleaseConnection.connect(to: first.endpoint, secret: secret) { connection in
            _ = try await connection.createNetwork(
                NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/20")!, leaseTTL: 30)
            )
            let joined = try await connection.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1))
            return HostClaim(host: "h1", epoch: joined.epoch)
        }

        let client = LeaderFollowingClient(endpoints: endpoints, secret: secret)
        let killed = ContinuousClock.now
        let (acknowledged, firstAfterKill) = try await withThrowingTaskGroup(
            of: ([String: IPv4Address], ContinuousClock.Instant?).self
        ) { group in
            for worker in 0..<4 {
                group.addTask {
                    var acknowledged: [String: IPv4Address] = [:]
                    var firstAfter: ContinuousClock.Instant?
                    for index in 0..<150 {
                        let owner = "w\(worker)-\(index)"
                        let lease = try await client.acquire(
                            AcquireRequest(network: "prod", owner: owner, claim: claim),
                            deadline: .seconds(30)
                        )
                        acknowledged[owner] = lease.address
                        if client.failovers > 0, firstAfter == nil { firstAfter = .now }
                    }
                    return (acknowledged, firstAfter)
                }
            }
            group.addTask {
                // Kill once some leases were acknowledged.
                while client.acknowledgements < 100 { try await Task.sleep(for: .milliseconds(5)) }
                first.kill9()
                return ([:], nil)
            }
            var all: [String: IPv4Address] = [:]
            var earliest: ContinuousClock.Instant?
            for try await (acks, after) in group {
                all.merge(acks) { a, _ in a }
                if let after { earliest = min(earliest ?? after, after) }
            }
            return (all, earliest)
        }
        XCTAssertEqual(acknowledged.count, 600)
        XCTAssertEqual(Set(acknowledged.values).count, acknowledged.count, "an address was acknowledged twice")
        let outage = (firstAfterKill ?? killed) - killed
        print("leader killed: the standby answered again after \(outage); \(client.failovers) client failovers")
        XCTAssertLessThan(outage, .seconds(8), "takeover took \(outage)")

        try await NetleaseConnection.connect(to: second.endpoint, secret: secret) { connection in
            let leases = try await connection.leases(.init(network: "prod"))
            let containers = leases.filter { !$0.isBridge }
            XCTAssertEqual(
                Dictionary(uniqueKeysWithValues: containers.map { ($0.owner, $0.address) }),
                acknowledged,
                "an acknowledged lease was lost, moved or an unacknowledged one appeared"
            )
            XCTAssertEqual(Set(leases.map(\.address)).count, leases.count, "an address is held twice")
            // The host keeps its epoch and its leases: the new leader gave it a full TTL.
            let hosts = try await connection.hosts()
            XCTAssertEqual(hosts.map(\.state), [.up])
            _ = try await connection.heartbeat(host: "h1", epoch: claim.epoch!)
            let stats = try await connection.stats()
            XCTAssertEqual(stats["role"], "leader")
            XCTAssertEqual(stats["term"], "2")
        }
    }

    /// A leader stopped (SIGSTOP) past its lease is replaced; when it runs again it answers nothing it held — its
    /// lease is over before it could renew — finds itself deposed, closes its connections and stands by.
    func testAStalledLeaderIsDeposedAndNeverAnswersAgain() async throws {
        let url = try makeDatabase()
        let old = try await start(makeDirectory(), ["--store", url])
        let secret = try old.secret
        try await waitUntilLeading(old.endpoint, secret: secret)
        let new = try await start(makeDirectory(), ["--store", url])
        try await NetleaseConnection.connect(to: old.endpoint, secret: secret) { connection in
            _ = try await connection.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
            _ = try await connection.acquire(AcquireRequest(network: "prod", owner: "before"))
        }
        // A client connected to the old leader, authenticated, idle while the leader is stopped.
        let raw = try RawLineClient(port: old.endpoint.port)
        _ = try raw.readLine()
        try raw.send("AUTH secret=\(secret)\n")
        XCTAssertEqual(try raw.readLine()?.hasPrefix("OK"), true)

        old.process.signal(SIGSTOP)
        let took = try await waitUntilLeading(new.endpoint, secret: secret)
        print("stalled leader replaced after \(took)")
        try await NetleaseConnection.connect(to: new.endpoint, secret: secret) { connection in
            _ = try await connection.acquire(AcquireRequest(network: "prod", owner: "after"))
        }
        old.process.signal(SIGCONT)

        // Whatever the old leader says now, it is never OK.
        try raw.send("ACQUIRE network=prod owner=late\n")
        let reply = ((try? raw.readLine()) ?? nil) ?? "(closed)"
        XCTAssertFalse(reply.hasPrefix("OK"), "a deposed leader acknowledged: \(reply)")
        print("deposed leader answered: \(reply)")

        // It finds itself deposed and stands by, naming the new leader.
        var role = ""
        for _ in 0..<100 where role != "standby" {
            role = (try? await stats(old.endpoint, secret: secret))?["role"] ?? ""
            if role != "standby" { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertEqual(role, "standby")
        let oldStats = try await stats(old.endpoint, secret: secret)
        XCTAssertEqual(oldStats["leader"], "127.0.0.1:\(new.endpoint.port)")
        try await NetleaseConnection.connect(to: new.endpoint, secret: secret) { connection in
            let owners = try await connection.leases(.init(network: "prod")).map(\.owner)
            XCTAssertEqual(Set(owners), ["before", "after"])
        }
    }

    /// A leader stopped with SIGTERM resigns: a standby takes over without waiting out the takeover timeout.
    func testAGracefulLeaderResignsAndAStandbyTakesOverAtOnce() async throws {
        let url = try makeDatabase()
        let old = try await start(makeDirectory(), ["--store", url])
        let secret = try old.secret
        try await waitUntilLeading(old.endpoint, secret: secret)
        let new = try await start(makeDirectory(), ["--store", url])
        try await Task.sleep(for: .milliseconds(600))  // the standby has seen the leader
        let stopped = ContinuousClock.now
        XCTAssertEqual(old.stop(), 0)
        try await waitUntilLeading(new.endpoint, secret: secret)
        let took = ContinuousClock.now - stopped
        print("after a graceful stop the standby led within \(took)")
        XCTAssertLessThan(took, .milliseconds(2500), "the standby waited out its takeover timeout")
    }
}

/// A client holding the list of coordinators: it sends to the one it believes leads, follows `not-leader leader=…`
/// and moves on when a coordinator does not answer; a request whose reply was lost, or refused with `storage` (the
/// database is away), is repeated (acquires are idempotent per owner). It counts the errors it saw, by code.
final class LeaderFollowingClient: @unchecked Sendable {
    // @unchecked: the counters and the current index are guarded by `lock`.
    private let endpoints: [Endpoint]
    private let secret: String
    private let lock = NSLock()
    private var current = 0
    private var acknowledged = 0
    private var failedOver = 0
    private var errors: [ErrorCode: Int] = [:]

    init(endpoints: [Endpoint], secret: String) {
        self.endpoints = endpoints
        self.secret = secret
    }

    var acknowledgements: Int { lock.withLock { acknowledged } }
    var failovers: Int { lock.withLock { failedOver } }
    /// The error replies and failures seen so far, by code (each was retried).
    var errorsSeen: [ErrorCode: Int] { lock.withLock { errors } }

    func acquire(_ request: AcquireRequest, deadline: Duration) async throws -> Lease {
        let start = ContinuousClock.now
        var lastError: Error?
        while ContinuousClock.now - start < deadline {
            let index = lock.withLock { current }
            do {
                let lease = try await NetleaseConnection.connect(
                    to: endpoints[index],
                    secret: secret,
                    connectTimeout: .seconds(1)
                ) { connection in
                    try await connection.within(.seconds(5), "acquire") { try await connection.acquire(request) }
                }
                lock.withLock { acknowledged += 1 }
                return lease
            } catch let error as NetleaseError where error.code == .storage {
                lastError = error
                lock.withLock { errors[error.code, default: 0] += 1 }
                try await Task.sleep(for: .milliseconds(50))
            } catch let error as NetleaseError where error.code == .notLeader || error.code == .unavailable {
                lastError = error
                lock.withLock { errors[error.code, default: 0] += 1 }
                let hinted = error.code == .notLeader ? Self.leader(in: error.message) : nil
                lock.withLock {
                    let next = hinted.flatMap { hint in endpoints.firstIndex { "\($0)" == hint } }
                    if current == index {
                        current = next ?? (index + 1) % endpoints.count
                        failedOver += 1
                    }
                }
                if hinted == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
        }
        throw lastError ?? NetleaseError(.unavailable, "no coordinator answered")
    }

    /// `HOST:PORT` from a `not-leader` message (`leader=HOST:PORT …`), if it names one.
    static func leader(in message: String) -> String? {
        guard message.hasPrefix("leader=") else { return nil }
        let value = message.dropFirst("leader=".count).prefix { $0 != " " }
        return value.isEmpty ? nil : String(value)
    }
}
