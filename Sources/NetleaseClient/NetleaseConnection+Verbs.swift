import Foundation
import NetleaseCore
import NetleaseWire

/// Typed calls for every verb. Each returns domain values and throws `NetleaseError` for `ERR` replies.
extension NetleaseConnection {
    public func ping() async throws {
        try await send(Request.ping)
    }

    public func createNetwork(_ spec: NetworkSpec) async throws -> NetworkSpec {
        try WireCodec.networkSpec(from: try await send(.networkCreate(spec)).fields, requireAll: true)
    }

    public func networks() async throws -> [NetworkSummary] {
        try await send(Request.networkList).records.map(Self.summary)
    }

    public func network(_ name: String) async throws -> NetworkSummary {
        try Self.summary(try await send(.networkShow(name: name)).fields)
    }

    public func deleteNetwork(_ name: String) async throws {
        try await send(.networkDelete(name: name))
    }

    /// `lastEpoch`: the highest epoch this host was given before, if known (its new one is higher, whatever the
    /// coordinator's store remembers).
    public func join(
        host: String,
        underlay: IPv4Address,
        networks: [String] = [],
        lastEpoch: Int64? = nil
    ) async throws -> JoinReply {
        let reply = try await send(.join(host: host, underlay: underlay, networks: networks, lastEpoch: lastEpoch))
        return JoinReply(
            epoch: try reply.fields.requireInt("epoch"),
            bridges: try reply.records.map(WireCodec.lease),
            store: reply.fields["store"] ?? "",
            generation: try reply.fields.int("generation") ?? 0
        )
    }

    /// A consistent copy of the coordinator's store (an SQLite file), with the store's identity.
    public func backup() async throws -> (data: Data, store: String, generation: Int64) {
        let reply = try await send(Request.backup)
        var data = Data()
        for record in reply.records {
            guard let chunk = Data(base64Encoded: try record.require("b64")) else {
                throw NetleaseError(.internalError, "backup chunk is not base64")
            }
            data.append(chunk)
        }
        guard data.count == Int(try reply.fields.requireInt("bytes")) else {
            throw NetleaseError(.internalError, "backup truncated: got \(data.count) bytes")
        }
        return (data, reply.fields["store"] ?? "", try reply.fields.int("generation") ?? 0)
    }

    /// Renews the host's leases; returns the epoch and the coordinator store's generation.
    @discardableResult
    public func heartbeat(host: String, epoch: Int64) async throws -> (epoch: Int64, generation: Int64) {
        let fields = try await send(.heartbeat(host: host, epoch: epoch)).fields
        return (try fields.requireInt("epoch"), try fields.int("generation") ?? 0)
    }

    public func hosts() async throws -> [HostRecord] {
        try await send(Request.hostList).records.map(WireCodec.host)
    }

    /// Removes a host for good: its leases go to cooldown, its credential is revoked and its connections closed.
    @discardableResult
    public func removeHost(_ name: String) async throws -> HostRemoval {
        let fields = try await send(.hostRemove(host: name)).fields
        return HostRemoval(
            released: Int(try fields.requireInt("released")),
            // A coordinator older than credential revocation on removal does not send the field: unknown, not false.
            revoked: fields["revoked"].map { $0 == "1" },
            closed: Int(try fields.int("closed") ?? 0)
        )
    }

    public func acquire(_ request: AcquireRequest) async throws -> Lease {
        try WireCodec.lease(from: try await send(.acquire(request)).fields)
    }

    /// Returns the released lease, or nil when nothing matched (release is idempotent).
    @discardableResult
    public func release(_ request: ReleaseRequest) async throws -> Lease? {
        let fields = try await send(.release(request)).fields
        guard fields["released"] == "1" else { return nil }
        return try WireCodec.lease(from: fields)
    }

    public func reserve(network: String, address: IPv4Address, note: String = "") async throws -> Lease {
        try WireCodec.lease(from: try await send(.reserve(network: network, address: address, note: note)).fields)
    }

    public func unreserve(network: String, address: IPv4Address) async throws {
        try await send(.unreserve(network: network, address: address))
    }

    public func reportConflict(
        network: String,
        address: IPv4Address,
        mac: String,
        claim: HostClaim
    ) async throws
        -> Lease
    {
        try WireCodec.lease(
            from: try await send(.reportConflict(network: network, address: address, mac: mac, claim: claim)).fields
        )
    }

    public func leases(_ filter: Ledger.LeaseFilter = .init()) async throws -> [Lease] {
        try await send(.leaseList(filter)).records.map(WireCodec.lease)
    }

    /// States a lease this host actually uses; the answer says whether the coordinator agrees. A reply without a
    /// known `status` throws `bad-request`.
    public func reconcile(_ request: ReconcileRequest) async throws -> ReconcileOutcome {
        try WireCodec.reconcileOutcome(from: try await send(.reconcile(request)).fields)
    }

    public func stats() async throws -> Fields {
        try await send(Request.stats).fields
    }

    static func summary(_ fields: Fields) throws -> NetworkSummary {
        let spec = try WireCodec.networkSpec(from: fields, requireAll: true)
        let counts = try WireCodec.counts(from: fields) ?? PoolCounts(usable: spec.usableCount)
        return NetworkSummary(spec: spec, counts: counts)
    }
}

public struct JoinReply: Sendable, Equatable {
    public var epoch: Int64
    public var bridges: [Lease]
    /// The coordinator's store identity: a restore from an older backup shows as the same store, lower generation.
    public var store: String
    public var generation: Int64
}

/// What `HOST-REMOVE` did.
public struct HostRemoval: Sendable, Equatable {
    /// Leases of the host moved to cooldown.
    public var released: Int
    /// Whether the host had a credential, now revoked; nil when the coordinator did not say (a version that does not
    /// revoke on removal), so the credential may still be valid.
    public var revoked: Bool?
    /// Connections that had authenticated with that credential, now closed.
    public var closed: Int

    public init(released: Int, revoked: Bool?, closed: Int) {
        self.released = released
        self.revoked = revoked
        self.closed = closed
    }
}
