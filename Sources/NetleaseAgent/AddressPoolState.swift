import NetleaseCore

/// The pool keeper's bookkeeping, kept in the agent's `Runtime` under its lock: fills in flight, requests waiting
/// for one of them, and whether each network's pool was filled the first time (readiness waits for that).
struct PoolState: Sendable {
    /// A request that found its network's pool empty and waits for a fill in flight.
    struct Waiter: Sendable {
        var id: Int
        var continuation: CheckedContinuation<LocalLease?, Never>
    }

    /// Fills in flight per network.
    var filling: [String: Int] = [:]
    /// Requests waiting for a fill, per network, oldest first.
    var waiters: [String: [Waiter]] = [:]
    var nextWaiter = 0
    /// Fills of the current keeper's first round not yet ended, per network not yet primed.
    var firstRound: [String: Int] = [:]
    /// Networks whose pool was filled the first time, or could not be and the agent went ready anyway.
    var primed: Set<String> = []
    /// Readiness was announced (once in the agent's life).
    var announced = false
    /// The size each network's pool was last kept at, and why (`doctor` shows it).
    var targets: [String: PoolTarget] = [:]

    func inFlight(_ network: String) -> Int { filling[network, default: 0] }

    func waiting(_ network: String) -> Int { waiters[network, default: []].count }

    /// Queues a waiter when a fill in flight is left that no earlier waiter counts on.
    mutating func enqueue(_ waiter: Waiter, network: String) -> Bool {
        guard inFlight(network) > waiting(network) else { return false }
        waiters[network, default: []].append(waiter)
        return true
    }

    mutating func removeWaiter(id: Int, network: String) -> Waiter? {
        guard let index = waiters[network]?.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters[network]?.remove(at: index)
    }

    /// A fill of `network` ended with `entry` (nil: it failed). Returns the waiters to resume: the oldest gets the
    /// entry; when fewer fills are left in flight than waiters, the newest get nil (they lease on their own now).
    mutating func fillEnded(network: String, entry: LocalLease?) -> [(Waiter, LocalLease?)] {
        filling[network] = max(0, inFlight(network) - 1)
        var queue = waiters[network, default: []]
        var resumed: [(Waiter, LocalLease?)] = []
        if let entry, !queue.isEmpty { resumed.append((queue.removeFirst(), entry)) }
        while queue.count > inFlight(network) { resumed.append((queue.removeLast(), nil)) }
        waiters[network] = queue
        return resumed
    }

    /// Counts a first-round fill of `network` as ended; true when that was the round's last (the network is then
    /// primed).
    mutating func firstRoundFillEnded(network: String) -> Bool {
        guard !primed.contains(network), let left = firstRound[network] else { return false }
        if left > 1 {
            firstRound[network] = left - 1
            return false
        }
        firstRound[network] = nil
        primed.insert(network)
        return true
    }
}

/// The size a network's pool is kept at: `--pool-size`, unless a share of the network's free addresses is smaller.
struct PoolTarget: Sendable, Equatable {
    /// `--pool-size`.
    var configured: Int
    /// The cap: the pool's share of the free addresses; nil when the coordinator could not say how many are free.
    var share: Int?
    /// Free addresses counted for the cap (this host's own pool included) and the hosts serving the network.
    var free: Int
    var hosts: Int

    var size: Int { min(configured, share ?? configured) }

    /// Why the pool is smaller than `--pool-size`, or nil when it is not.
    var capReason: String? {
        guard let share, share < configured else { return nil }
        return "--pool-size \(configured), capped at \(share): the pools of the \(hosts) host(s) serving the network "
            + "hold at most 1/\(AgentConfiguration.poolShareDivisor) of its \(free) free address(es)"
    }
}
