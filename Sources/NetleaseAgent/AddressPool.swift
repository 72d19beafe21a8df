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

    /// Keeps the pools full while the session lasts: every missing address is filled at once, each by its own task
    /// (probing is waiting, not work), at most `AgentConfiguration.maximumParallelFills` per network; a hand-out
    /// wakes it at once, and a timer every 5 s retries after a failure. The first round of fills of each network
    /// primes it (readiness waits for that, at most `primingLimit`). Returns when cancelled.
    func maintainPools() async {
        state.withLock { $0.pool.firstRound = [:] }
        guard configuration.poolSize > 0 else {
            prime(configuration.networks, why: nil)
            return
        }
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.poolWake = wake }
        defer { state.withLock { $0.poolWake = nil } }
        wake.yield()
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(5))
                    wake.yield()
                }
            }
            group.addTask {
                guard (try? await Task.sleep(for: self.primingLimit)) != nil else { return }
                let late = self.configuration.networks.filter { name in
                    self.state.withLock { !$0.pool.primed.contains(name) }
                }
                self.prime(late, why: "its first fill did not end within \(self.primingLimit)")
            }
            for await _ in wakes {
                if Task.isCancelled { break }
                for network in configuration.networks {
                    let (fills, firstRound) = await plan(network)
                    for _ in 0..<fills { group.addTask { await self.fill(network, firstRound: firstRound) } }
                }
            }
            group.cancelAll()
        }
    }

    /// How long readiness waits for the first fill of the pools: one full probe of each address (they run at
    /// once) and time for the coordinator's answers.
    var primingLimit: Duration { configuration.probe.longest + .seconds(10) }

    /// `network`'s pool right now: probed addresses waiting (claimed ones included), fills in flight, and requests
    /// waiting for one of them.
    public func poolStatus(of network: String) -> (pooled: Int, filling: Int, waiting: Int) {
        let pooled = leases.all.filter { $0.network == network && isPoolOwner($0.owner) && $0.state == .pooled }.count
        return state.withLock { (pooled, $0.pool.inFlight(network), $0.pool.waiting(network)) }
    }

    /// Asks for a top-up at once (after a hand-out).
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

    /// A pooled address, claimed: one waiting in the pool, or else (any address wanted) the next fill in flight
    /// that no earlier request waits for. Its probe started before this request, so it ends sooner than a probe
    /// this request would start now. Nil when neither is there (or that fill failed): the request leases on its own.
    func nextPooled(network: String, address: IPv4Address?) async -> LocalLease? {
        if let entry = claimPooled(network: network, address: address) { return entry }
        guard address == nil else { return nil }
        return await awaitFill(network)
    }

    /// Waits for a fill of `network` in flight; its address (claimed), or nil when none is left to wait for, it
    /// failed, or the request was cancelled.
    private func awaitFill(_ network: String) async -> LocalLease? {
        let id = state.withLock { runtime -> Int in
            defer { runtime.pool.nextWaiter += 1 }
            return runtime.pool.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let queued = state.withLock { runtime in
                    !Task.isCancelled
                        && runtime.pool.enqueue(.init(id: id, continuation: continuation), network: network)
                }
                if !queued { continuation.resume(returning: nil) }
            }
        } onCancel: {
            state.withLock { $0.pool.removeWaiter(id: id, network: network) }?.continuation.resume(returning: nil)
        }
    }

    /// How many fills to start for `network` now, and whether they are its first round; gives back what is over
    /// the target instead. Counts only unclaimed pooled addresses and fills in flight, so an address being handed
    /// out is replaced at once.
    private func plan(_ network: String) async -> (fills: Int, firstRound: Bool) {
        guard let (session, _) = try? currentSession(for: network) else { return (0, false) }
        let target = await target(of: network, session)
        let claimed = state.withLock { $0.claimedPool }
        let pooled = leases.all.filter { $0.network == network && isPoolOwner($0.owner) && $0.state == .pooled }
        let unclaimed = pooled.filter { !claimed.contains($0.key) }
        let decision = state.withLock { runtime -> (fills: Int, firstRound: Bool, primedNow: Bool) in
            let inFlight = runtime.pool.inFlight(network)
            let fills = max(
                0,
                min(target - unclaimed.count - inFlight, AgentConfiguration.maximumParallelFills - inFlight)
            )
            runtime.pool.filling[network] = inFlight + fills
            guard !runtime.pool.primed.contains(network), runtime.pool.firstRound[network] == nil else {
                return (fills, false, false)
            }
            if fills == 0 {
                runtime.pool.primed.insert(network)
                return (0, false, true)
            }
            runtime.pool.firstRound[network] = fills
            return (fills, true, false)
        }
        if decision.primedNow { primed(network) }
        let surplus = pooled.count + state.withLock { $0.pool.inFlight(network) } - target
        if decision.fills == 0, surplus > 0 {
            for entry in unclaimed.prefix(surplus) { await giveBack(entry) }
        }
        return (decision.fills, decision.firstRound)
    }

    /// The pool size for `network`: `poolSize`, but the pools of all hosts serving it together hold at most
    /// 1/`poolShareDivisor` of the addresses free (besides this host's own pool), so that many hosts on a small
    /// subnet do not drain it. `poolSize` when the coordinator cannot say.
    /// Recorded for `doctor`.
    private func target(of network: String, _ session: Session) async -> Int {
        let hosts = (state.withLock { $0.directory }?.peers(of: network).count ?? 0) + 1
        var target = PoolTarget(configured: configuration.poolSize, share: nil, free: 0, hosts: hosts)
        if let counts = try? await session.connection.network(network).counts {
            let mine = leases.all.filter { $0.network == network && isPoolOwner($0.owner) }.count
            target.free = Int(clamping: counts.free) + mine
            target.share = target.free / (AgentConfiguration.poolShareDivisor * hosts)
        }
        state.withLock { [target] in $0.pool.targets[network] = target }
        return target.size
    }

    /// One fill: its address joins the pool, or goes straight to the oldest request waiting for one.
    private func fill(_ network: String, firstRound: Bool) async {
        let entry = await fillOne(network)
        let cancelled = Task.isCancelled
        let (resumed, primedNow) = state.withLock { runtime in
            let resumed = runtime.pool.fillEnded(network: network, entry: entry)
            for (_, handed) in resumed { if let handed { runtime.claimedPool.insert(handed.key) } }
            let primedNow = firstRound && !cancelled && runtime.pool.firstRoundFillEnded(network: network)
            return (resumed, primedNow)
        }
        for (waiter, handed) in resumed { waiter.continuation.resume(returning: handed) }
        if primedNow { primed(network) }
    }

    /// Marks `networks` primed without a full first fill (`why`), or at once when the pool is off (nil).
    private func prime(_ networks: [String], why: String?) {
        let newly = state.withLock { runtime in
            networks.filter { runtime.pool.primed.insert($0).inserted }
        }
        if let why {
            for network in newly {
                logger.warning(
                    "address pool not filled; ready anyway (attaches probe in full until it fills)",
                    metadata: ["network": "\(network)", "reason": "\(why)"]
                )
            }
        }
        announceReadyIfDue()
    }

    /// `network`'s first fill ended: logs when it left the pool short (and why), then announces readiness if due.
    private func primed(_ network: String) {
        let have = leases.all.filter { $0.network == network && isPoolOwner($0.owner) && $0.state == .pooled }.count
        if have < configuration.poolSize {
            let error = state.withLock { $0.poolErrors[network] }
            logger.warning(
                "address pool not full after its first fill; ready anyway",
                metadata: [
                    "network": "\(network)", "pooled": "\(have)", "pool-size": "\(configuration.poolSize)",
                    "reason": "\(error ?? "the pool's share of the subnet's free addresses is smaller")",
                ]
            )
        }
        announceReadyIfDue()
    }

    /// Leases one address under a new placeholder and probes it in full; it joins the pool when nothing answered.
    private func fillOne(_ network: String) async -> LocalLease? {
        let owner = poolOwnerPrefix + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        do {
            return try await ownerLocks.withLock(LocalLease.key(network: network, owner: owner)) { () -> LocalLease? in
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
                        state.withLock { $0.poolErrors[network] = "\(lease.address) answered an ARP probe from \(mac)" }
                        return nil
                    }
                    record.state = .pooled
                    try leases.put(record)
                    state.withLock { $0.poolErrors[network] = nil }
                    return record
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
            return nil
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
