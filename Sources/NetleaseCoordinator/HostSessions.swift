import NIOCore
import Synchronization

/// The connections authenticated with each host's credential, so that revoking (or replacing) a credential closes
/// every connection that authenticated with it, at once.
///
/// Design notes:
/// - AUTH reads the stored hash asynchronously; a revocation may commit between that read and the connection
///   being recorded here. Each host has a revocation count: AUTH notes it before reading the hash and is recorded
///   only if no revocation happened meanwhile, so a connection can never end up authenticated with a credential
///   revoked while it authenticated.
/// - A connection is forgotten when its channel closes.
/// - Closing a connection does not stop a request it already sent: a JOIN read before the close still reaches the
///   store, and committed after a host removal it would bring the removed host's record (and bridge addresses) back.
///   So a JOIN by a host credential is counted here while it runs and refused once the credential was revoked, and a
///   removal waits for the JOINs counted before it revoked (`joinsFinished`) before it removes the record.
final class HostSessions: Sendable {
    private struct State {
        var revocations: [String: Int] = [:]
        var channels: [String: [ObjectIdentifier: any Channel]] = [:]
        /// JOINs by a host credential on their way to the store, per host.
        var joins: [String: Int] = [:]
        /// Removals waiting for those JOINs to end.
        var joinWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    }

    private let state = Mutex(State())

    /// How many times `host`'s credential was revoked or replaced so far; pass it to `register`.
    func revocations(of host: String) -> Int {
        state.withLock { $0.revocations[host, default: 0] }
    }

    /// Records `channel` as authenticated as `host`, unless the credential was revoked since `revocations` was
    /// read; false then (the AUTH must fail).
    func register(_ channel: (any Channel)?, host: String, revocations: Int) -> Bool {
        let registered = state.withLock { s -> Bool in
            guard s.revocations[host, default: 0] == revocations else { return false }
            if let channel { s.channels[host, default: [:]][ObjectIdentifier(channel)] = channel }
            return true
        }
        if registered, let channel {
            channel.closeFuture.whenComplete { [self] _ in forget(channel, host: host) }
        }
        return registered
    }

    /// Counts a revocation of `host`'s credential and closes every connection authenticated with it; returns how
    /// many were open.
    @discardableResult
    func revoke(_ host: String) -> Int {
        let channels = state.withLock { s in
            s.revocations[host, default: 0] += 1
            return s.channels.removeValue(forKey: host).map { Array($0.values) } ?? []
        }
        for channel in channels { channel.close(promise: nil) }
        return channels.count
    }

    /// Runs `join` (a JOIN of `host` by a connection that authenticated with its credential when its revocation
    /// count was `revocations`) unless that credential was revoked or replaced since; `nil` then, and the JOIN must
    /// fail. While `join` runs, `joinsFinished(host)` waits for it.
    func joining<T>(_ host: String, revocations: Int, _ join: () async throws -> T) async rethrows -> T? {
        let admitted = state.withLock { s -> Bool in
            guard s.revocations[host, default: 0] == revocations else { return false }
            s.joins[host, default: 0] += 1
            return true
        }
        guard admitted else { return nil }
        defer {
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.joins[host, default: 1] -= 1
                guard s.joins[host] == 0 else { return [] }
                s.joins.removeValue(forKey: host)
                return s.joinWaiters.removeValue(forKey: host) ?? []
            }
            for waiter in waiters { waiter.resume() }
        }
        return try await join()
    }

    /// Returns once no JOIN of `host` admitted by `joining` is running. After `revoke(host)` no new one is admitted
    /// with the revoked credential, so a removal that waits here removes a record no such JOIN re-creates.
    func joinsFinished(_ host: String) async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let waiting = state.withLock { s -> Bool in
                guard s.joins[host, default: 0] > 0 else { return false }
                s.joinWaiters[host, default: []].append(waiter)
                return true
            }
            if !waiting { waiter.resume() }
        }
    }

    private func forget(_ channel: any Channel, host: String) {
        state.withLock { s in
            s.channels[host]?.removeValue(forKey: ObjectIdentifier(channel))
            if s.channels[host]?.isEmpty == true { s.channels.removeValue(forKey: host) }
        }
    }
}
