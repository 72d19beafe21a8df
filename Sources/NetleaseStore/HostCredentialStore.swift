import Foundation
import NetleaseCore

/// A host credential as a store keeps it: the host it authenticates as, the salted hash of its secret (never the
/// secret), and when it was issued.
public struct StoredHostCredential: Sendable, Equatable {
    public var host: String
    public var hash: SecretHash
    /// Milliseconds since the Unix epoch.
    public var issued: Millis

    public init(host: String, hash: SecretHash, issued: Millis) {
        self.host = host
        self.hash = hash
        self.issued = issued
    }
}

/// Where host credentials live: beside the leases, in the same durable store (a table of its own), so they survive
/// restarts, travel with backups of the SQLite store and are shared by every coordinator on one PostgreSQL database.
/// At most one credential per host: issuing replaces the previous one.
///
/// Every method is one transaction; each returns once its effect is durable. On a shared database, a coordinator
/// that does not lead answers `not-leader` (a write also re-checks the term in its own transaction).
public protocol HostCredentialStore: Sendable {
    /// The credential of `host`, or nil.
    func hostCredential(_ host: String) async throws -> StoredHostCredential?
    /// Stores `credential`, replacing any earlier one of its host; true when one was replaced.
    func storeHostCredential(_ credential: StoredHostCredential) async throws -> Bool
    /// Deletes the credential of `host`; true when there was one.
    func revokeHostCredential(_ host: String) async throws -> Bool
    /// Every stored credential, by host name.
    func hostCredentials() async throws -> [StoredHostCredential]
}

extension StoredHostCredential {
    /// The record read back from a row; a hash that is not ours is a damaged store.
    public static func row(host: String, hash text: String, issued: Millis) throws -> StoredHostCredential {
        guard let hash = SecretHash(stored: text) else {
            throw NetleaseError(.storage, "the stored credential hash of host '\(host)' is unreadable")
        }
        return StoredHostCredential(host: host, hash: hash, issued: issued)
    }
}

extension GroupCommitStore {
    /// Runs `body` with the journal on the writer queue, between commits, without holding a thread of the
    /// cooperative pool while a commit finishes.
    public func onWriter<T: Sendable>(_ body: @escaping @Sendable (any LedgerJournal) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try self.withJournal(body) })
            }
        }
    }
}
