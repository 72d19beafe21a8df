import NetleaseCore

/// A database several coordinators share, one leading at a time (the PostgreSQL store). The coordinator's
/// leadership loop drives it; this is all it needs to know of the database.
///
/// Leadership is a record with a term that only grows. A coordinator leads by taking the next term in a
/// transaction; every batch the store commits re-checks that term in the same transaction, so a coordinator whose
/// term was taken can never commit (and never acknowledge) again.
public protocol LeadershipBackend: Sendable {
    /// Reads the leadership record.
    func observe() async throws -> LeadershipRecord

    /// Takes the next term — only if the record still equals `seen` (nil: whatever it holds) — recording `leader`
    /// as the address clients should use, and opens the store for that term with the state loaded. Throws
    /// `not-leader` when another coordinator took it first.
    func takeOver(from seen: LeadershipRecord?, leader: String) async throws -> (store: any LeaseStore, term: Int64)

    /// Records that `term` is alive. False when another term leads.
    func renew(term: Int64) async throws -> Bool

    /// Gives up `term` (a leader shutting down, after it stopped serving): standbys may take over at once.
    func resign(term: Int64) async throws

    /// Closes the backend's own connection (not the stores it opened).
    func close() async
}

/// The leadership record as stored.
public struct LeadershipRecord: Sendable, Equatable, CustomStringConvertible {
    /// 0 before anyone led.
    public var term: Int64
    /// The leader's address for clients (`HOST:PORT`); empty before anyone led.
    public var leader: String
    /// Counts the leader's renewals within its term; a standby that sees it stand still takes over.
    public var beat: Int64

    public init(term: Int64, leader: String, beat: Int64) {
        self.term = term
        self.leader = leader
        self.beat = beat
    }

    public var description: String { "term \(term) leader '\(leader)' beat \(beat)" }
}

/// What a coordinator on a shared database is at the moment (`STATS` shows it).
public struct LeadershipStatus: Sendable, Equatable {
    public enum Role: String, Sendable {
        case leader
        case standby
    }

    public var role: Role
    /// False for a standby, and for a leader whose own lease ran out before a renewal: it answers nothing then.
    public var serving: Bool
    /// The leader's address as far as this coordinator knows; empty when unknown.
    public var leader: String
    public var term: Int64

    public init(role: Role, serving: Bool, leader: String, term: Int64) {
        self.role = role
        self.serving = serving
        self.leader = leader
        self.term = term
    }

    /// The refusal of a coordinator that does not serve: `not-leader leader=ADDR …` (a standby names the leader it
    /// last saw; a leader whose lease ran out knows of none: `leader=` is empty).
    public var refusal: NetleaseError {
        guard role == .standby else {
            return NetleaseError(.notLeader, "leader= this coordinator's leadership lease ran out; it answers nothing")
        }
        return NetleaseError(.notLeader, "leader=\(leader) this coordinator is a standby")
    }
}
