import NetleaseCore
import NetleaseWire

/// Host credentials (admin verbs): the coordinator only ever sees their hashes.
extension NetleaseConnection {
    /// Stores `hash` (a stored-form salted hash) as the credential of `host`, replacing any earlier one and closing
    /// the connections that used it. Returns whether one was replaced and how many connections were closed.
    @discardableResult
    public func setHostCredential(host: String, hash: String) async throws -> (replaced: Bool, closed: Int) {
        let fields = try await send(.hostCredentialSet(host: host, hash: hash)).fields
        return (fields["replaced"] == "1", Int(try fields.int("closed") ?? 0))
    }

    /// Deletes the credential of `host` and closes the connections that used it. Returns whether there was one and
    /// how many connections were closed.
    @discardableResult
    public func revokeHostCredential(host: String) async throws -> (revoked: Bool, closed: Int) {
        let fields = try await send(.hostCredentialRevoke(host: host)).fields
        return (fields["revoked"] == "1", Int(try fields.int("closed") ?? 0))
    }

    /// The hosts that have a credential, with when it was issued (milliseconds since the Unix epoch).
    public func hostCredentials() async throws -> [(host: String, issued: Millis)] {
        try await send(Request.hostCredentialList).records.map { (try $0.require("host"), try $0.requireInt("issued")) }
    }
}
