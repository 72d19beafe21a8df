import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseLab
import NetleaseTransport

/// The coordinators under test, as real processes on 127.0.0.1: one on its SQLite file (killed and restarted on the
/// same data directory), or several on one PostgreSQL database (the leader killed, then started again, to stand
/// by). Clients reach them through the client library's leader following (`NetleaseConnection.connectToLeader`).
final class ChaosCluster: @unchecked Sendable {
    // @unchecked: `members` is changed only by the harness's own sequential cycle (kill, restart), never while
    // another task reads it.
    struct Member {
        var process: LabProcess
        var endpoint: Endpoint
        let data: String
    }

    let binary: String
    let directory: String
    /// `postgres://…` shared by every member; nil: a single coordinator on SQLite.
    let store: String?
    let secret: String
    private(set) var members: [Member]

    var endpoints: [Endpoint] { members.map(\.endpoint) }

    private init(binary: String, directory: String, store: String?, secret: String, members: [Member]) {
        self.binary = binary
        self.directory = directory
        self.store = store
        self.secret = secret
        self.members = members
    }

    /// Starts `count` coordinators (one without a store). On PostgreSQL the first initialises the database and
    /// writes the cluster secret into its data directory; the others start once it leads, and stand by.
    static func start(binary: String, directory: String, count: Int, store: String?) async throws -> ChaosCluster {
        precondition(count >= 1 && (store != nil || count == 1), "several coordinators need a shared store")
        let first = try await launch(binary: binary, data: data(directory, 0), directory: directory, store: store)
        let secret: String
        do {
            secret = try String(
                contentsOfFile: (first.data as NSString).appendingPathComponent(ClusterSecret.fileName),
                encoding: .utf8
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            first.process.kill9()
            throw NetleaseError(.unavailable, "the first coordinator wrote no cluster secret: \(error)")
        }
        let cluster = ChaosCluster(
            binary: binary,
            directory: directory,
            store: store,
            secret: secret,
            members: [first]
        )
        do {
            _ = try await cluster.leader(within: .seconds(60))
            for index in 1..<count {
                cluster.members.append(
                    try await launch(binary: binary, data: data(directory, index), directory: directory, store: store)
                )
            }
        } catch {
            cluster.killAll()
            throw error
        }
        return cluster
    }

    /// The member that leads and serves; waits for one (a takeover in progress) at most `limit`.
    func leader(within limit: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + limit
        while true {
            let endpoints = self.endpoints
            if let endpoint = await NetleaseConnection.leading(among: endpoints, secret: secret),
                let index = endpoints.firstIndex(of: endpoint)
            {
                return index
            }
            guard ContinuousClock.now < deadline else {
                throw NetleaseError(.unavailable, "no coordinator led within \(limit)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGKILLs the leader (the only member, on SQLite); returns its index.
    func killLeader() async throws -> Int {
        let index = members.count == 1 ? 0 : try await leader(within: .seconds(60))
        members[index].process.kill9()
        return index
    }

    /// Starts member `index` again on its data directory (a new port).
    func restart(_ index: Int) async throws {
        members[index] = try await Self.launch(
            binary: binary,
            data: members[index].data,
            directory: directory,
            store: store
        )
    }

    /// Runs `body` on the leader, following `not-leader` and skipping members that do not answer.
    func connectToLeader<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
        try await NetleaseConnection.connectToLeader(among: endpoints, secret: secret, body)
    }

    /// Stops every member gracefully (a leader resigns).
    func stopAll() {
        for member in members { _ = member.process.stop() }
    }

    func killAll() {
        for member in members { member.process.kill9() }
    }

    private static func data(_ directory: String, _ index: Int) -> String {
        (directory as NSString).appendingPathComponent(index == 0 ? "data" : "data-\(index)")
    }

    private static func launch(binary: String, data: String, directory: String, store: String?) async throws -> Member {
        let name = (data as NSString).lastPathComponent
        let process = try LabProcess(
            argv: [binary, "coordinator", "--listen", "127.0.0.1:0", "--data", data, "--log-level", "error"]
                + (store.map { ["--store", $0] } ?? []),
            name: "coordinator-\(name)",
            logPath: (directory as NSString).appendingPathComponent("coordinator-\(name).log")
        )
        guard let line = await process.line(containing: "listening on 127.0.0.1:", timeout: .seconds(60)),
            let port = Int(line.split(separator: ":").last ?? "")
        else {
            process.kill9()
            throw NetleaseError(.unavailable, "coordinator did not start: \(process.log)")
        }
        return Member(process: process, endpoint: Endpoint(host: "127.0.0.1", port: port), data: data)
    }
}
