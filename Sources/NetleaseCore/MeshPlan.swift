/// One tunnel endpoint of a mesh: a key (a peer's host name, a device or port name, or the address itself) and the
/// peer's underlay address.
public struct MeshEndpoint<Key: Hashable & Comparable & Sendable>: Hashable, Sendable {
    public var key: Key
    public var underlay: IPv4Address

    public init(key: Key, underlay: IPv4Address) {
        self.key = key
        self.underlay = underlay
    }
}

/// What must change so that the tunnels a host has (observed) become the tunnels it should have (desired).
///
/// Pure: it compares two maps and says which endpoints to remove and which to add. The shell (HostNetwork) turns
/// the directives into commands. An endpoint whose underlay address changed is removed and added again, so the
/// shell never has to update a tunnel in place. Both lists are sorted by key, so equal inputs give equal plans.
public struct MeshPlan<Key: Hashable & Comparable & Sendable>: Equatable, Sendable {
    /// Endpoints to take down, applied before `add`.
    public var remove: [MeshEndpoint<Key>]
    /// Endpoints to set up.
    public var add: [MeshEndpoint<Key>]

    public var isEmpty: Bool { remove.isEmpty && add.isEmpty }

    /// Plans by key: a key present on both sides with the same address is kept.
    public init(desired: [Key: IPv4Address], observed: [Key: IPv4Address]) {
        remove = observed.filter { desired[$0.key] != $0.value }
            .map { MeshEndpoint(key: $0.key, underlay: $0.value) }
            .sorted { $0.key < $1.key }
        add = desired.filter { observed[$0.key] != $0.value }
            .map { MeshEndpoint(key: $0.key, underlay: $0.value) }
            .sorted { $0.key < $1.key }
    }

    /// Plans a mesh with one tunnel (device or port) per peer, named by `key(peer host)`. Peers at `local` (this
    /// host itself) are left out.
    public init(
        peers: [String: IPv4Address],
        local: IPv4Address?,
        observed: [Key: IPv4Address],
        key: (String) -> Key
    ) {
        var desired: [Key: IPv4Address] = [:]
        for (host, underlay) in peers where underlay != local {
            desired[key(host)] = underlay
        }
        self.init(desired: desired, observed: observed)
    }
}

extension MeshPlan where Key == IPv4Address {
    /// Plans a mesh keyed by underlay address only, as a VXLAN forwarding table is: one entry per distinct peer
    /// address. Peers at `local` (this host itself) are left out.
    public init(peers: [String: IPv4Address], local: IPv4Address?, observedDestinations: Set<IPv4Address>) {
        var desired: [IPv4Address: IPv4Address] = [:]
        for underlay in peers.values where underlay != local {
            desired[underlay] = underlay
        }
        var observed: [IPv4Address: IPv4Address] = [:]
        for destination in observedDestinations {
            observed[destination] = destination
        }
        self.init(desired: desired, observed: observed)
    }
}
