import NetleaseCore
import NetleaseStore
import NetleaseWire

extension RequestHandler {
    /// HOST-REMOVE: retires a host for good. Its credential is revoked and the connections that authenticated with it
    /// are closed, then its record goes and its host-bound leases move to cooldown. A removed host used to keep its
    /// credential, so its agent (or anyone holding the file) could join straight back as it; now it needs a new
    /// credential (`host credential issue`) to return.
    ///
    /// The credential goes first, in its own transaction: a removal that fails half-way (the store, a lost
    /// leadership) leaves a host that can no longer act, never a removed host that can still authenticate, and
    /// repeating the removal finishes it. A host that has a credential but no record (issued, never joined, or the
    /// second half of such a repeat) is removed by revoking it; with neither, the reply is `not-found`.
    func removeHost(_ host: String) async throws -> Reply {
        try Names.checkName(host, field: "host", kind: "host")
        let revoked = try await (store as? any HostCredentialStore)?.revokeHostCredential(host) ?? false
        let closed = hostSessions.revoke(host)
        // A JOIN its connections sent before they closed may still be on its way to the store: it goes first.
        await hostSessions.joinsFinished(host)
        let released: Int
        do {
            released = try await store.removeHost(host)
            events.publish(.hostRemoved(host))
        } catch let error as NetleaseError where error.code == .notFound && revoked {
            released = 0
        }
        logger.notice(
            "host removed",
            metadata: [
                "host": "\(host)", "released": "\(released)", "credential revoked": "\(revoked)",
                "closed connections": "\(closed)",
            ]
        )
        return .ok(["released": String(released), "revoked": revoked ? "1" : "0", "closed": String(closed)])
    }
}
