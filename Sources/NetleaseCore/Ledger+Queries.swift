extension Ledger {
    public struct LeaseFilter: Sendable, Equatable {
        public var network: String?
        public var host: String?
        public var state: LeaseState?
        public var owner: String?

        public init(network: String? = nil, host: String? = nil, state: LeaseState? = nil, owner: String? = nil) {
            self.network = network
            self.host = host
            self.state = state
            self.owner = owner
        }
    }

    /// Matching records in address order. Cooldown records are listed only when asked for by state. `renewed` of a
    /// host-bound lease is its host's last heartbeat.
    public func leases(_ filter: LeaseFilter) throws -> [Lease] {
        if let network = filter.network { try checkNetwork(network) }
        if let host = filter.host, !host.isEmpty { try Names.checkName(host, field: "host", kind: "host") }
        if let owner = filter.owner {
            try Names.checkText(owner, field: "owner", maxBytes: Names.maxOwnerBytes, allowEmpty: true)
        }
        var result: [Lease] = []
        for name in books.keys.sorted() where filter.network == nil || filter.network == name {
            for var lease in books[name]!.leases {
                if let state = filter.state {
                    guard lease.state == state else { continue }
                } else if lease.state == .cooldown {
                    continue
                }
                if let host = filter.host, !lease.host.hasSameBytes(as: host) { continue }
                if let owner = filter.owner, !lease.owner.hasSameBytes(as: owner) { continue }
                if !lease.isStatic, lease.state == .active, let host = hosts[lease.host] {
                    lease.renewed = max(lease.renewed, host.lastHeartbeat)
                }
                result.append(lease)
            }
        }
        return result.sorted { ($0.network, $0.address) < ($1.network, $1.address) }
    }
}
