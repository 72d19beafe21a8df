import NIOCore
import NIOPosix
import NetleaseCore
import NetleaseTransport

extension NetleaseConnection {
    /// Connects to the coordinator of `endpoints` that leads (several coordinators on one database) and runs
    /// `body` there. Tries them in order, each `search.rounds` times at most; a standby's
    /// `not-leader leader=HOST:PORT` sends it to that address at once, once per call; otherwise it pauses
    /// (`search`'s jittered, growing, bounded backoff) before the next address in the list. When none leads it
    /// throws `unavailable` naming what each address answered last.
    ///
    /// `body` is run again only when nothing of it can have taken effect: after `not-leader` (a coordinator that
    /// does not lead changes nothing), or when the connection failed before `body` began. A connection lost while
    /// `body` runs is thrown, as with `connect`.
    public static func connectToLeader<T: Sendable>(
        among endpoints: [Endpoint],
        secret: String? = nil,
        tls: TLSSettings? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        search: LeaderSearch = .standard,
        _ body: (NetleaseConnection) async throws -> T
    ) async throws -> T {
        guard !endpoints.isEmpty else { throw NetleaseError.badRequest("no coordinator address given") }
        var answers = LeaderSearch.Answers()
        var hint: Endpoint?
        var listAttempts = 0
        while true {
            let next: Endpoint
            if let followed = hint {
                next = followed
                hint = nil
            } else {
                if listAttempts == endpoints.count * max(search.rounds, 1) { break }
                if listAttempts > 0 { try await search.pause(search.delay(after: listAttempts)) }
                next = endpoints[listAttempts % endpoints.count]
                listAttempts += 1
            }
            var began = false
            do {
                return try await connect(to: next, secret: secret, tls: tls, group: group) { connection in
                    began = true
                    return try await body(connection)
                }
            } catch let error as NetleaseError
                where error.code == .notLeader || (error.code == .unavailable && !began)
            {
                answers.record(next, error)
                if error.code == .notLeader, !answers.followedHint, let named = leader(in: error.message),
                    named != next
                {
                    answers.followedHint = true
                    hint = named
                }
            }
        }
        throw answers.failure(addresses: endpoints.count)
    }

    /// The first of `endpoints` that leads and serves right now (its `STATS` says `role=leader serving=1`; a
    /// coordinator on SQLite, which has no roles, always does), or nil when none does — during a takeover, or when
    /// none answers. Standbys answer `STATS` too, so this asks each once and never waits for an election: callers
    /// that need a leader ask again, within their own deadline.
    public static func leading(
        among endpoints: [Endpoint],
        secret: String? = nil,
        tls: TLSSettings? = nil,
        connectTimeout: Duration = .seconds(1)
    ) async -> Endpoint? {
        for endpoint in endpoints {
            let stats = try? await connect(to: endpoint, secret: secret, tls: tls, connectTimeout: connectTimeout) {
                connection in try await connection.within(.seconds(5), "stats") { try await connection.stats() }
            }
            if let stats, stats["role"] ?? "leader" == "leader", stats["serving"] ?? "1" == "1" { return endpoint }
        }
        return nil
    }

    /// The leader's address a `not-leader` message names (`leader=HOST:PORT …`), if any.
    public static func leader(in message: String) -> Endpoint? {
        guard message.hasPrefix("leader=") else { return nil }
        let value = message.dropFirst("leader=".count).prefix { $0 != " " }
        return value.isEmpty ? nil : try? Endpoint(parsing: String(value))
    }
}
