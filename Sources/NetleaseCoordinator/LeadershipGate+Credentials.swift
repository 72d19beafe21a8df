import NetleaseCore
import NetleaseStore

/// Host credentials through the store of the current term: the leader reads and changes them in the shared
/// database; a standby answers `not-leader` like for every other verb.
extension LeadershipGate: HostCredentialStore {
    public func hostCredential(_ host: String) async throws -> StoredHostCredential? {
        try await credentialStore().hostCredential(host)
    }

    public func storeHostCredential(_ credential: StoredHostCredential) async throws -> Bool {
        try await credentialStore().storeHostCredential(credential)
    }

    public func revokeHostCredential(_ host: String) async throws -> Bool {
        try await credentialStore().revokeHostCredential(host)
    }

    public func hostCredentials() async throws -> [StoredHostCredential] {
        try await credentialStore().hostCredentials()
    }

    private func credentialStore() throws -> any HostCredentialStore {
        guard let store = try current() as? any HostCredentialStore else {
            throw NetleaseError(.unavailable, "this store keeps no host credentials")
        }
        return store
    }
}
