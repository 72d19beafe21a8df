import NetleaseStore

extension StoreOperation {
    /// The operation's free-text fields, which PostgreSQL's text cannot hold with a NUL in them (names are checked by
    /// the ledger's own rules), by field name.
    var freeText: KeyValuePairs<String, String> {
        switch self {
        case .acquire(_, let owner, _, _, let ifname, _): ["owner": owner, "ifname": ifname]
        case .release(_, let owner, _, _, _): ["owner": owner ?? ""]
        case .reserve(_, _, let note, _): ["note": note]
        case .reportConflict(_, _, let mac, _, _): ["mac": mac]
        case .reconcile(_, let owner, _, let ifname, _, _): ["owner": owner, "ifname": ifname]
        case .createNetwork, .deleteNetwork, .networks, .network, .join, .hosts, .removeHost, .heartbeat, .unreserve,
            .leases, .handOver, .reclaim:
            [:]
        }
    }
}
