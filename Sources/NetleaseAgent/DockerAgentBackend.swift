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

    /// An endpoint that leases again (a container started again with the same MAC) cancels a release of it still
    /// deferred: that release was for the endpoint before, and would now take the new lease.
    func dockerAcquire(network: String, owner: String, address: IPv4Address?) async throws -> IPv4Address {
        let address = try await agent.acquire(network: network, owner: owner, ifname: "", address: address).lease
            .address
        for entry in backlog.all where entry.network == network && entry.owner == owner {
            do {
                try backlog.remove(entry)
            } catch {
                // Harmless: the deferred release is decided under the owner's lock, and finds this lease recorded.
                agent.logger.warning(
                    "cannot drop a deferred Docker release of an endpoint that leased again",
                    metadata: ["network": "\(network)", "owner": "\(owner)", "error": "\(error)"]
                )
            }
        }
        return address
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
            do {
                // Decided under the owner's lock: an endpoint leased again since (same MAC, `docker run
                // --mac-address`, or a container started again) keeps its lease, and the deferred release is moot.
                let released = try await agent.releaseDeferred(network: entry.network, owner: entry.owner) {
                    backlog.all.contains(entry)
                }
                try backlog.remove(entry)
                agent.logger.notice(
                    released
                        ? "deferred Docker release done"
                        : "deferred Docker release not needed: the endpoint leased again",
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
