import NetleaseCore

/// The agent as Docker's IPAM driver sees it: the same session, lease path and lease record as `netlease attach`.
extension Agent: DockerIPAMBackend {
    public var servedNetworks: [String] { configuration.networks }

    public func dockerNetwork(_ name: String) throws -> DockerNetworkFacts {
        guard configuration.networks.contains(name) else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(name)'")
        }
        let (session, lastError) = state.withLock { ($0.session, $0.lastError) }
        guard let context = session?.networks[name] else {
            // Until then Docker would lease nothing that the mesh can carry (invariant 5): say so, and why.
            var message = "the netlease agent on this host is not ready: network '\(name)' is not yet built and "
                + "verified, or there is no coordinator session; retry in a few seconds"
            if let lastError { message += " (last error: \(lastError))" }
            throw NetleaseError(.unavailable, message)
        }
        return DockerNetworkFacts(subnet: context.spec.subnet, gateway: context.bridgeAddress)
    }

    public func dockerAcquire(network: String, owner: String, address: IPv4Address?) async throws -> IPv4Address {
        try await acquire(network: network, owner: owner, ifname: "", address: address).lease.address
    }

    public func dockerRelease(network: String, owner: String) async throws {
        try await release(network: network, owner: owner)
    }

    public func localOwner(network: String, address: IPv4Address) -> String? {
        let text = address.description
        return leases.all.first { $0.network == network && $0.address == text }?.owner
    }
}
