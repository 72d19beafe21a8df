import Foundation
import NetleaseCore
import NetleaseStore
import NetleaseTransport
import NetleaseWire

/// Who may do what (invariant 8), checked once per request in `RequestHandler.start` before anything acts on it.
///
/// Three kinds of credential:
/// - the cluster secret: admin, every verb;
/// - the reader secret: listings only (`forbidden` for every change, BACKUP and HOST-CREDENTIAL-LIST);
/// - a host credential (`netlease-host:<host>:<hex>`): acts only as its host. It may JOIN and HEARTBEAT as that
///   host; ACQUIRE, RELEASE, RECONCILE and REPORT-CONFLICT only with a claim naming that host and an epoch (so the
///   store refuses a stale one, and a release or reconcile never touches another host's lease); list networks and
///   hosts, WATCH, and LEASE-LIST its own leases and every host's bridge address (what an agent needs to follow
///   the mesh). Everything else is `forbidden`.
///
/// With TLS the client certificate binds what AUTH may grant: the cluster secret only with a certificate named by
/// `tlsAdminSubjects`, a host credential only with a certificate naming that host (its CN or a DNS subjectAltName)
/// or an admin certificate; the reader secret with any certificate of the CA.
extension RequestHandler {
    func checkAccess(_ request: Request, session: Session) throws {
        if !session.authenticated && !request.allowedBeforeAuth {
            throw NetleaseError(
                .authRequired,
                "\(request.verb.rawValue) needs an authenticated connection; send AUTH first"
            )
        }
        if let host = session.host {
            try Self.checkHostAccess(request, host: host)
        } else if session.readOnly && request.needsAdmin {
            throw NetleaseError(.forbidden, "\(request.verb.rawValue) needs admin credentials; these are read-only")
        }
    }

    /// What a connection authenticated as `host` may send.
    static func checkHostAccess(_ request: Request, host: String) throws {
        let verb = request.verb.rawValue
        // Host names are ASCII (the parser checked them): equal strings are equal bytes.
        func actsAs(_ named: String) throws {
            guard named == host else {
                throw NetleaseError(
                    .forbidden,
                    "\(verb) for host '\(named)': this host credential acts only as host '\(host)'"
                )
            }
        }
        func claims(_ claim: HostClaim?) throws {
            guard let claim, claim.epoch != nil else {
                throw NetleaseError(
                    .forbidden,
                    "\(verb) with a host credential needs host=\(host) and the host's current epoch"
                )
            }
            try actsAs(claim.host)
        }
        switch request {
        case .ping, .auth, .quit, .networkList, .networkShow, .hostList, .watch:
            return
        case .leaseList(let filter):
            if let named = filter.host { try actsAs(named) }
        case .join(let named, _, _, _), .heartbeat(let named, _):
            try actsAs(named)
        case .acquire(let r):
            try claims(r.claim)
        case .release(let r):
            try claims(r.claim)
        case .reconcile(let r):
            try claims(r.claim)
        case .reportConflict(_, _, _, let claim):
            try claims(claim)
        case .networkCreate, .networkDelete, .hostRemove, .reserve, .unreserve, .backup, .stats,
            .hostCredentialSet, .hostCredentialRevoke, .hostCredentialList:
            throw NetleaseError(.forbidden, "\(verb) needs admin credentials; this one acts only as host '\(host)'")
        }
    }

    /// Whether a connection may see `lease` in a listing: a host credential sees its own host's leases and every
    /// host's bridge address; the others see everything.
    static func mayList(_ lease: Lease, session: Session) -> Bool {
        guard let host = session.host else { return true }
        return lease.host == host || lease.isBridge
    }

    /// What a connection may see of a lease in a reply: a host credential sees its own host's leases and every
    /// bridge address whole; of any other record only the address, state, host and times — not who holds it (owner,
    /// interface, MAC, note), which LEASE-LIST does not show it either.
    static func visible(_ lease: Lease, to session: Session) -> Lease {
        guard let host = session.host, lease.host != host, !lease.isBridge else { return lease }
        var shown = lease
        shown.owner = ""
        shown.ifname = ""
        shown.mac = ""
        shown.note = ""
        return shown
    }

    /// AUTH with the cluster or reader secret: the cluster secret makes the session admin, the reader secret
    /// read-only. Without a configured secret every AUTH succeeds as admin. After `maxAuthFailures` wrong secrets
    /// the connection is closed.
    func authenticate(_ candidate: String, session: inout Session) throws -> Reply {
        guard let secret else {
            session.authenticated = true
            return .ok(["role": "admin"])
        }
        if !secret.matches(candidate), let readerSecret, readerSecret.matches(candidate) {
            session.authenticated = true
            session.readOnly = true
            session.host = nil
            return .ok(["role": "reader"])
        }
        guard secret.matches(candidate) else { throw authenticationFailed(&session) }
        guard isAdminCertificate(session) else {
            throw NetleaseError(
                .forbidden,
                "the cluster secret is accepted only with an admin certificate (--tls-admin-subject); this "
                    + "certificate names \(Self.describe(session.certificateNames))"
            )
        }
        session.authenticated = true
        session.readOnly = false
        session.host = nil
        return .ok(["role": "admin"])
    }

    /// AUTH with a host credential: compared with the stored hash of its host's credential. Runs as a barrier (the
    /// hash is read from the store).
    func authenticate(_ credential: HostCredential, session: inout Session) async throws -> Reply {
        guard secret != nil else {
            session.authenticated = true
            return .ok(["role": "admin"])
        }
        let credentials = try credentialStore()
        let revocations = hostSessions.revocations(of: credential.host)
        guard let stored = try await credentials.hostCredential(credential.host),
            stored.hash.matches(credential.text)
        else { throw authenticationFailed(&session) }
        let names = session.certificateNames
        guard names.map({ Self.names($0, contain: credential.host) }) ?? true || isAdminCertificate(session) else {
            throw NetleaseError(
                .forbidden,
                "the credential of host '\(credential.host)' is accepted only with a certificate naming that host; "
                    + "this certificate names \(Self.describe(names))"
            )
        }
        guard hostSessions.register(session.channel, host: credential.host, revocations: revocations) else {
            throw authenticationFailed(&session)
        }
        session.authenticated = true
        session.readOnly = false
        session.host = credential.host
        session.hostRevocations = revocations
        return .ok(["role": "host", "host": credential.host])
    }

    private func authenticationFailed(_ session: inout Session) -> NetleaseError {
        session.authFailures += 1
        if session.authFailures >= maxAuthFailures { session.closeRequested = true }
        logger.warning("authentication failed", metadata: ["failures": "\(session.authFailures)"])
        return NetleaseError(.authFailed, "wrong secret")
    }

    private func isAdminCertificate(_ session: Session) -> Bool {
        guard let names = session.certificateNames else { return true }
        return tlsAdminSubjects.contains { Self.names(names, contain: $0) }
    }

    /// Whether a certificate's `names` include `name`, byte for byte. Swift's `==` compares by canonical
    /// equivalence: a certificate named with the Kelvin sign (U+212A) would otherwise pass for a host named with
    /// the letter K.
    static func names(_ names: [String], contain name: String) -> Bool {
        names.contains { $0.utf8.elementsEqual(name.utf8) }
    }

    private static func describe(_ names: [String]?) -> String {
        guard let names, !names.isEmpty else { return "no name" }
        return names.map { "'\($0)'" }.joined(separator: ", ")
    }

    func credentialStore() throws -> any HostCredentialStore {
        guard let credentials = store as? any HostCredentialStore else {
            throw NetleaseError(.unavailable, "this coordinator's store keeps no host credentials")
        }
        return credentials
    }

    // MARK: HOST-CREDENTIAL-* (admin)

    func setHostCredential(host: String, hash text: String) async throws -> Reply {
        guard let hash = SecretHash(stored: text) else {
            throw NetleaseError.badRequest("field 'hash' is not a credential hash")
        }
        let issued = Millis(Date().timeIntervalSince1970 * 1000)
        let replaced = try await credentialStore().storeHostCredential(
            StoredHostCredential(host: host, hash: hash, issued: issued)
        )
        // The replaced credential is dead: its connections go with it.
        let closed = hostSessions.revoke(host)
        logger.notice(
            "host credential issued",
            metadata: ["host": "\(host)", "replaced": "\(replaced)", "closed connections": "\(closed)"]
        )
        return .ok(["host": host, "replaced": replaced ? "1" : "0", "closed": String(closed)])
    }

    func revokeHostCredential(host: String) async throws -> Reply {
        let revoked = try await credentialStore().revokeHostCredential(host)
        let closed = hostSessions.revoke(host)
        logger.notice(
            "host credential revoked",
            metadata: ["host": "\(host)", "revoked": "\(revoked)", "closed connections": "\(closed)"]
        )
        return .ok(["host": host, "revoked": revoked ? "1" : "0", "closed": String(closed)])
    }

    func listHostCredentials() async throws -> Reply {
        .list(
            header: Fields(),
            tag: WireCodec.credentialTag,
            records: try await credentialStore().hostCredentials().map { credential in
                var fields = Fields()
                fields.append("host", credential.host)
                fields.append("issued", String(credential.issued))
                return fields
            }
        )
    }
}
