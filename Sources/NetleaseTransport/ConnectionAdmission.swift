import NIOCore
import Synchronization

/// Who may hold a connection slot before and after presenting a credential, so that clients without one can never
/// crowd out those with one.
///
/// Design notes:
/// - Every accepted connection starts *unauthenticated*. At most `maxUnauthenticated` of them are open at once, and
///   at most `maxUnauthenticatedPerSource` from one source address. A new connection over either cap is still
///   admitted and the **oldest** unauthenticated connection (of that source, for the per-source cap) is closed
///   instead: refusing the newcomer would let a few hundred silent sockets keep every agent out, while evicting the
///   oldest means an attacker must open connections faster than an agent answers the greeting with `AUTH` (one
///   round trip) to keep it out, and one source cannot evict the connections of another at all.
/// - Together with the pre-authentication deadline (the coordinator closes a connection that has not authenticated
///   within it; `PING` does not extend it), an unauthenticated connection holds a slot for seconds, not minutes.
/// - Read-only credentials are capped apart (`maxReaders`, watchers included): a leaked reader secret cannot fill
///   the slots admins and agents need either.
/// - Authenticated connections are bounded only by the server's overall connection cap, which must be larger than
///   the sum of the other two caps (checked by the coordinator's configuration).
public final class ConnectionAdmission: Sendable {
    public struct Limits: Sendable, Equatable {
        public static let defaultMaxUnauthenticated = 1024
        public static let defaultMaxUnauthenticatedPerSource = 256
        public static let defaultMaxReaders = 64

        public var maxUnauthenticated: Int
        public var maxUnauthenticatedPerSource: Int
        public var maxReaders: Int

        public init(
            maxUnauthenticated: Int = Limits.defaultMaxUnauthenticated,
            maxUnauthenticatedPerSource: Int = Limits.defaultMaxUnauthenticatedPerSource,
            maxReaders: Int = Limits.defaultMaxReaders
        ) {
            self.maxUnauthenticated = maxUnauthenticated
            self.maxUnauthenticatedPerSource = maxUnauthenticatedPerSource
            self.maxReaders = maxReaders
        }
    }

    /// What a connection has proven so far.
    public enum Standing: Sendable, Equatable {
        case unauthenticated
        case reader
        case authenticated
    }

    private struct Entry {
        var channel: any Channel
        var source: String
        var standing: Standing
    }

    private struct State {
        var next = 0
        var entries: [Int: Entry] = [:]
        /// Unauthenticated connections by id (ids grow with arrival: the smallest is the oldest).
        var unauthenticated: Set<Int> = []
        var unauthenticatedBySource: [String: Int] = [:]
        var readers = 0
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits) { self.limits = limits }

    /// Open unauthenticated connections.
    public var unauthenticatedCount: Int { state.withLock { $0.unauthenticated.count } }
    /// Open connections authenticated with a read-only credential.
    public var readerCount: Int { state.withLock { $0.readers } }

    /// Registers a newly accepted connection as unauthenticated. Returns its ticket and the connection that must
    /// give way for it (the oldest unauthenticated one of its source, or of all), if a cap was reached; the caller
    /// closes that one.
    public func admit(_ channel: any Channel) -> (ticket: Int, evicted: (any Channel)?) {
        let source = Self.source(of: channel)
        return state.withLock { state in
            var evicted: (any Channel)?
            if state.unauthenticatedBySource[source, default: 0] >= limits.maxUnauthenticatedPerSource {
                let oldest = state.unauthenticated.filter { state.entries[$0]?.source == source }.min()
                evicted = oldest.flatMap { Self.drop($0, from: &state) }
            } else if state.unauthenticated.count >= limits.maxUnauthenticated, let oldest = state.unauthenticated.min()
            {
                evicted = Self.drop(oldest, from: &state)
            }
            state.next += 1
            state.entries[state.next] = Entry(channel: channel, source: source, standing: .unauthenticated)
            state.unauthenticated.insert(state.next)
            state.unauthenticatedBySource[source, default: 0] += 1
            return (state.next, evicted)
        }
    }

    /// Records that the connection `ticket` authenticated. False when it may not hold a slot with that standing:
    /// it was evicted meanwhile, or `standing` is `.reader` and the reader cap is reached (then it keeps its
    /// previous standing; the caller closes it).
    public func promote(_ ticket: Int, to standing: Standing) -> Bool {
        state.withLock { state in
            guard var entry = state.entries[ticket] else { return false }
            if standing == entry.standing { return true }
            if standing == .reader && state.readers >= limits.maxReaders { return false }
            Self.leave(entry, ticket, from: &state)
            entry.standing = standing
            switch standing {
            case .unauthenticated:
                state.unauthenticated.insert(ticket)
                state.unauthenticatedBySource[entry.source, default: 0] += 1
            case .reader: state.readers += 1
            case .authenticated: break
            }
            state.entries[ticket] = entry
            return true
        }
    }

    /// Forgets a closed connection.
    public func remove(_ ticket: Int) {
        state.withLock { state in _ = Self.drop(ticket, from: &state) }
    }

    private static func drop(_ ticket: Int, from state: inout State) -> (any Channel)? {
        guard let entry = state.entries.removeValue(forKey: ticket) else { return nil }
        leave(entry, ticket, from: &state)
        return entry.channel
    }

    private static func leave(_ entry: Entry, _ ticket: Int, from state: inout State) {
        switch entry.standing {
        case .unauthenticated:
            state.unauthenticated.remove(ticket)
            let left = state.unauthenticatedBySource[entry.source, default: 1] - 1
            state.unauthenticatedBySource[entry.source] = left > 0 ? left : nil
        case .reader: state.readers -= 1
        case .authenticated: break
        }
    }

    /// The source address without its port (one host's connections share it); unix sockets share one source.
    static func source(of channel: any Channel) -> String {
        channel.remoteAddress?.ipAddress ?? "local"
    }
}

/// A connection's place in its server's `ConnectionAdmission`, handed to the connection's handler.
public struct AdmissionTicket: Sendable {
    public let admission: ConnectionAdmission
    public let id: Int

    /// See `ConnectionAdmission.promote(_:to:)`.
    public func promote(to standing: ConnectionAdmission.Standing) -> Bool { admission.promote(id, to: standing) }
}
