import HostNetwork
import Logging
import NetleaseClient
import NetleaseCore
import NetleaseWire

/// Addresses leased and probed ahead of demand, per network.
///
/// Design notes:
/// - An RFC 5227 probe listens for seconds (`ARPProbeOptions`); a container start should not. So each agent keeps
///   `poolSize` addresses per network leased under placeholder owners `pool:<host>:<random>` (host-bound, so a lost
///   host's pool is reclaimed like its other leases) and probed in full in the background. A new owner gets one
///   after a brief re-check, and the coordinator hands the lease over to it (`ACQUIRE … from=<placeholder>`), which
///   keeps the address without a release and its cooldown. The pool is then topped up.
/// - Pool records go through the same states as requests (`pending` while leasing and probing, then `pooled`), so
///   a killed agent undoes a fill the same way it undoes a request.
/// - Between the full probe and the hand-out the bridge is watched (`ARPDefence`): a device that claims a pooled
///   address is reported and the address leaves the pool. The re-check covers a device that came up silently.
/// - A pooled address being handed out is marked claimed (in memory), so neither another request nor a pool trim
///   takes it at the same time.
/// - The pool is given back when the agent stops (gracefully), and trimmed when it holds more than `poolSize`.
extension Agent {
    /// Whether `owner` is one of this host's pool placeholders.
    func isPoolOwner(_ owner: String) -> Bool { owner.hasPrefix(poolOwnerPrefix) }

    var poolOwnerPrefix: String { "pool:\(configuration.host):" }

    /// Keeps the pools full while the session lasts: tops up at once, after every hand-out, and every 5 s (to retry
    /// after a failure). Returns when cancelled.
    func maintainPools() async {
        guard configuration.poolSize > 0 else { return }
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.poolWake = wake }
        defer { state.withLock { $0.poolWake = nil } }
        wake.yield()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(5))
                    wake.yield()
                }
            }
            group.addTask {
                for await _ in wakes {
                    if Task.isCancelled { break }
                    for network in self.configuration.networks { await self.topUp(network) }
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Asks for a top-up soon (after a hand-out).
    func wakePool() {
        state.withLock { $0.poolWake }?.yield()
    }

    /// A pooled address of `network` for a new owner, marked claimed; nil when the pool is empty. With `address`
    /// (a request for one address, e.g. Docker's `--ip`), only that address if it is pooled.
    func claimPooled(network: String, address: IPv4Address? = nil) -> LocalLease? {
        state.withLock { runtime -> LocalLease? in
            let entry = leases.all.first {
                $0.network == network && $0.state == .pooled && !runtime.claimedPool.contains($0.key)
                    && (address == nil || $0.ipv4 == address)
            }
            if let entry { runtime.claimedPool.insert(entry.key) }
            return entry
        }
    }

    func unclaim(_ entry: LocalLease) {
        _ = state.withLock { $0.claimedPool.remove(entry.key) }
    }

    /// Fills `network`'s pool up to `poolSize` (the missing addresses at once) or gives back what is over it.
    private func topUp(_ network: String) async {
        guard (try? currentSession(for: network)) != nil else { return }
        let entries = leases.all.filter { $0.network == network && isPoolOwner($0.owner) }
        let missing = configuration.poolSize - entries.count
        if missing > 0 {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<missing { group.addTask { await self.fillOne(network) } }
            }
        } else if missing < 0 {
            let claimed = state.withLock { $0.claimedPool }
            for entry in entries.filter({ $0.state == .pooled && !claimed.contains($0.key) }).prefix(-missing) {
                await giveBack(entry)
            }
        }
    }

    /// Leases one address under a new placeholder and probes it in full; it joins the pool when nothing answered.
    private func fillOne(_ network: String) async {
        let owner = poolOwnerPrefix + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        do {
            try await ownerLocks.withLock(LocalLease.key(network: network, owner: owner)) {
                let (session, context) = try currentSession(for: network)
                var record = LocalLease(
                    network: network,
                    owner: owner,
                    address: nil,
                    prefix: context.spec.subnet.prefix,
                    ifname: "",
                    netns: nil,
                    state: .pending
                )
                try leases.put(record)
                do {
                    let lease = try await session.connection.acquire(
                        AcquireRequest(network: network, owner: owner, claim: session.claim)
                    )
                    record.address = lease.address.description
                    try leases.put(record)
                    if let mac = try await prober.probe(
                        lease.address,
                        on: context.config.bridge,
                        options: configuration.probe,
                        ignoring: []
                    ) {
                        logger.warning(
                            "address answered an ARP probe; quarantining it",
                            metadata: [
                                "network": "\(network)", "address": "\(lease.address)", "mac": "\(mac)",
                            ]
                        )
                        _ = try await session.connection.reportConflict(
                            network: network,
                            address: lease.address,
                            mac: mac,
                            claim: session.claim
                        )
                        try leases.remove(network: network, owner: owner)
                        return
                    }
                    record.state = .pooled
                    try leases.put(record)
                    state.withLock { $0.poolErrors[network] = nil }
                } catch {
                    await undoRequest(network: network, owner: owner)
                    throw error
                }
            }
        } catch {
            state.withLock { $0.poolErrors[network] = "\(error)" }
            logger.warning(
                "cannot add an address to the pool",
                metadata: [
                    "network": "\(network)", "error": "\(error)",
                ]
            )
        }
    }

    /// Releases one pooled address and forgets it.
    private func giveBack(_ entry: LocalLease) async {
        do {
            try await ownerLocks.withLock(entry.key) {
                let (session, _) = try currentSession(for: entry.network)
                try await session.connection.release(
                    ReleaseRequest(network: entry.network, owner: entry.owner, claim: session.claim)
                )
                try leases.remove(network: entry.network, owner: entry.owner)
            }
        } catch {
            logger.warning(
                "cannot give back a pooled address",
                metadata: [
                    "network": "\(entry.network)", "address": "\(entry.address)", "error": "\(error)",
                ]
            )
        }
    }

    /// Gives back every pooled address (the agent stops), and the lease of any fill the stop interrupted, on a
    /// connection of its own to the coordinator of the last session. Bounded: an unreachable coordinator costs at
    /// most two seconds, and the records stay for the next start.
    func returnPools() async {
        let entries = leases.all.filter { isPoolOwner($0.owner) }
        guard !entries.isEmpty, let (endpoint, claim) = state.withLock({ $0.lastSession }) else { return }
        do {
            try await NetleaseConnection.connect(
                to: endpoint,
                secret: configuration.secret,
                tls: configuration.tls,
                connectTimeout: .seconds(1)
            ) { control in
                try await control.within(.seconds(2), "giving back the address pool") {
                    for entry in entries {
                        _ = try await control.release(
                            ReleaseRequest(network: entry.network, owner: entry.owner, claim: claim)
                        )
                        try self.leases.remove(network: entry.network, owner: entry.owner)
                    }
                }
            }
            logger.info("address pool given back", metadata: ["addresses": "\(entries.count)"])
        } catch {
            logger.warning(
                "cannot give back the address pool; it is kept for the next start",
                metadata: [
                    "error": "\(error)"
                ]
            )
        }
    }
}
