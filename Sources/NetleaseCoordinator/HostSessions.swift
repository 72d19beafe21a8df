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
final class HostSessions: Sendable {
    private struct State {
        var revocations: [String: Int] = [:]
        var channels: [String: [ObjectIdentifier: any Channel]] = [:]
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

    private func forget(_ channel: any Channel, host: String) {
        state.withLock { s in
            s.channels[host]?.removeValue(forKey: ObjectIdentifier(channel))
            if s.channels[host]?.isEmpty == true { s.channels.removeValue(forKey: host) }
        }
    }
}
