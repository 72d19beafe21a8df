import Logging
import NetleaseCore

/// The agent as Docker's IPAM driver sees it: the same session, lease path and lease record as `netlease attach`,
/// plus the releases Docker asked for while the coordinator was out of reach.
struct DockerAgentBackend: DockerIPAMBackend {
    let agent: Agent
    let backlog: DockerReleaseBacklog

    /// How often deferred releases are retried while some are waiting.
    static let retryInterval: Duration = .seconds(2)

    var servedNetworks: [String] { agent.configuration.networks }

    func dockerNetwork(_ name: String) throws -> DockerNetworkFacts {
        guard servedNetworks.contains(name) else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(name)'")
        }
        let (session, lastError) = agent.state.withLock { ($0.session, $0.lastError) }
        guard let context = session?.networks[name] else {
            // Until then Docker would lease nothing that the mesh can carry (invariant 5): say so, and why.
            var message =
                "the netlease agent on this host is not ready: network '\(name)' is not yet built and "
                + "verified, or there is no coordinator session; retry in a few seconds"
            if let lastError { message += " (last error: \(lastError))" }
            throw NetleaseError(.unavailable, message)
        }
        return DockerNetworkFacts(subnet: context.spec.subnet, gateway: context.bridgeAddress)
    }

    func dockerAcquire(network: String, owner: String, address: IPv4Address?) async throws -> IPv4Address {
        try await agent.acquire(network: network, owner: owner, ifname: "", address: address).lease.address
    }

    func dockerRelease(network: String, owner: String) async throws {
        try await agent.release(network: network, owner: owner)
    }

    func localOwner(network: String, address: IPv4Address) -> String? {
        let text = address.description
        return agent.leases.all.first { $0.network == network && $0.address == text }?.owner
    }

    func deferRelease(network: String, owner: String, address: IPv4Address) throws {
        try backlog.add(.init(network: network, owner: owner, address: address.description))
        try agent.leases.remove(network: network, owner: owner)
    }

    /// Finishes the deferred releases, while the agent has a session; keeps those that fail for another try.
    func finishDeferredReleases() async {
        let waiting = backlog.all
        guard !waiting.isEmpty, agent.state.withLock({ $0.session != nil }) else { return }
        for entry in waiting {
            // Leased again since (an endpoint with the same MAC, `docker run --mac-address`): releasing would take
            // the address from a live container; the deferred release is moot.
            if agent.leases.lease(network: entry.network, owner: entry.owner) != nil {
                try? backlog.remove(entry)
                continue
            }
            do {
                try await agent.release(network: entry.network, owner: entry.owner)
                try backlog.remove(entry)
                agent.logger.notice(
                    "deferred Docker release done",
                    metadata: [
                        "network": "\(entry.network)", "owner": "\(entry.owner)", "address": "\(entry.address)",
                    ]
                )
            } catch  where DockerIPAMPlugin.isWorthRetrying(error) {
                agent.logger.debug(
                    "deferred Docker release still waits",
                    metadata: [
                        "owner": "\(entry.owner)", "error": "\(error)",
                    ]
                )
            } catch {
                agent.logger.error(
                    "deferred Docker release refused; dropping it",
                    metadata: [
                        "network": "\(entry.network)", "owner": "\(entry.owner)", "error": "\(error)",
                    ]
                )
                try? backlog.remove(entry)
            }
        }
    }

    /// Retries deferred releases until cancelled.
    func runBacklog() async {
        while !Task.isCancelled {
            await finishDeferredReleases()
            try? await Task.sleep(for: Self.retryInterval)
        }
    }
}
