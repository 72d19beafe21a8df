import Dispatch
import Logging
import NetleaseCore
import NetleaseStore
import ServiceLifecycle

/// Timing of leadership on a shared database. Defaults: a leader's death is noticed and taken over within
/// `takeoverTimeout` + 2 × `renewInterval` (4 s), plus the time to load the state.
public struct LeadershipConfiguration: Sendable {
    /// Address clients use to reach this coordinator, recorded while it leads.
    public var advertise: String
    /// How often the leader renews and a standby looks at the record.
    public var renewInterval: Duration
    /// How long a leader serves after the start of its last successful renewal (monotonic clock).
    public var leaderLease: Duration
    /// How long a standby waits, after it last saw the record change, before it takes over.
    public var takeoverTimeout: Duration

    public init(
        advertise: String,
        renewInterval: Duration = .milliseconds(500),
        leaderLease: Duration = .seconds(2),
        takeoverTimeout: Duration = .seconds(3)
    ) {
        self.advertise = advertise
        self.renewInterval = renewInterval
        self.leaderLease = leaderLease
        self.takeoverTimeout = takeoverTimeout
    }

    /// The lease must end before a standby can take over, and renewals must come well within the lease.
    public func validate() throws {
        guard renewInterval > .zero, renewInterval * 2 <= leaderLease else {
            throw NetleaseError.badRequest("the renew interval must be at most half the leader lease")
        }
        guard leaderLease < takeoverTimeout else {
            throw NetleaseError.badRequest("the leader lease must be shorter than the takeover timeout")
        }
    }
}

/// Leads or stands by on a shared database, switching the `LeadershipGate` the server serves from.
///
/// Design notes:
/// - Standby: reads the record every `renewInterval`. When it has not changed for `takeoverTimeout` (measured from
///   when this coordinator first saw its current value, on its own monotonic clock), or nobody leads, it takes the
///   next term — as a compare-and-set on the record it saw, so of several standbys one wins — loads the state and
///   only then serves. Loading gives every up host a full TTL (the ledger's rule for any start).
/// - Leader: renews every `renewInterval`. Its lease runs `leaderLease` from the start of its last successful
///   renewal. A standby saw that renewal only after it committed, so it waits at least `takeoverTimeout` >
///   `leaderLease` after the leader's lease began: the old leader has stopped answering before a new one starts.
/// - A renewal that finds another term means this coordinator was deposed: it closes its store (whose commits
///   would fail the term check anyway) and every client connection, and stands by. When the lease just runs out
///   (the database is unreachable) it closes the connections too, and serves again if a later renewal shows its
///   term still leads.
/// - On graceful shutdown a leader stops serving, then resigns, so a standby takes over without waiting.
public struct Leadership: Service {
    let backend: any LeadershipBackend
    let gate: LeadershipGate
    let configuration: LeadershipConfiguration
    let logger: Logger
    /// Closes every client connection (the server's).
    let closeConnections: @Sendable () -> Void

    public init(
        backend: any LeadershipBackend,
        gate: LeadershipGate,
        configuration: LeadershipConfiguration,
        logger: Logger = Logger(label: "netlease.leadership"),
        closeConnections: @escaping @Sendable () -> Void
    ) {
        self.backend = backend
        self.gate = gate
        self.configuration = configuration
        self.logger = logger
        self.closeConnections = closeConnections
    }

    public func run() async throws {
        var term: Int64 = 0
        await loop(term: &term)
        if let store = gate.follow(leader: "", term: term) {
            closeInBackground(store)
            do {
                try await backend.resign(term: term)
                logger.notice("resigned leadership", metadata: ["term": "\(term)"])
            } catch {
                logger.warning(
                    "could not resign leadership; a standby takes over after its timeout",
                    metadata: ["error": "\(error)"]
                )
            }
        }
        await backend.close()
    }

    private func loop(term: inout Int64) async {
        var seen: LeadershipRecord?
        var seenAt = ContinuousClock.now
        var lapsed = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if gate.isLeading {
                let start = ContinuousClock.now
                do {
                    if try await backend.renew(term: term) {
                        gate.extend(until: start + configuration.leaderLease)
                        if lapsed { logger.notice("leadership renewed again; serving", metadata: ["term": "\(term)"]) }
                        lapsed = false
                    } else {
                        logger.warning(
                            "deposed: another coordinator took the database; standing by",
                            metadata: ["term": "\(term)"]
                        )
                        if let store = gate.follow(leader: "", term: term) { closeInBackground(store) }
                        closeConnections()
                        seen = nil
                        lapsed = false
                        continue
                    }
                } catch {
                    logger.warning("leadership renewal failed", metadata: ["term": "\(term)", "error": "\(error)"])
                }
                if gate.leadershipStatus()?.serving == false && !lapsed {
                    lapsed = true
                    logger.warning(
                        "leadership lease ran out without a renewal; answering nothing",
                        metadata: ["term": "\(term)"]
                    )
                    closeConnections()
                }
            } else {
                do {
                    let record = try await backend.observe()
                    let now = ContinuousClock.now
                    gate.observed(leader: record.leader, term: record.term)
                    if record != seen {
                        seen = record
                        seenAt = now
                    }
                    let vacant = record.term == 0 || record.leader.isEmpty
                    if vacant || now - seenAt >= configuration.takeoverTimeout {
                        let start = ContinuousClock.now
                        let taken = try await backend.takeOver(from: record, leader: configuration.advertise)
                        term = taken.term
                        gate.lead(
                            taken.store,
                            term: taken.term,
                            leader: configuration.advertise,
                            until: start + configuration.leaderLease
                        )
                        logger.notice(
                            "leading",
                            metadata: [
                                "term": "\(taken.term)", "previous": "\(record)",
                                "advertise": "\(configuration.advertise)",
                            ]
                        )
                        continue  // renew at once: loading may have used much of the first lease
                    }
                } catch let error as NetleaseError where error.code == .notLeader {
                    logger.info("another coordinator took the database first", metadata: ["error": "\(error)"])
                    seen = nil
                } catch {
                    logger.warning("cannot read the leadership record", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: configuration.renewInterval)
        }
    }

    /// Closing waits for the store's writer; never on a cooperative thread.
    private func closeInBackground(_ store: any LeaseStore) {
        DispatchQueue.global().async { store.close() }
    }
}
