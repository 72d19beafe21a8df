import NetleaseCore
import NetleaseTransport
import Synchronization

/// One run of acquire load: where to, how many connections with how much in flight, the schedule and the budget.
struct LoadPlan: Sendable {
    var target: BenchTarget
    /// Owners are `<ownerPrefix>-<connection>-<seq>`: unique per run and connection, so the verification can match
    /// every acknowledgement to its line in LEASE-LIST.
    var ownerPrefix: String
    /// Connections, each authenticated once and kept for the whole run.
    var connections: Int
    /// Requests each connection keeps in flight (1: one at a time).
    var pipeline: Int
    /// Per-connection interval between scheduled acquires (open loop); 0 = closed loop.
    var intervalNs: UInt64
    /// Whether each acknowledged acquire is released at once (the pool never fills).
    var release: Bool
    /// Most acquires to send over all connections.
    var budget: Int
    /// Seconds of load, unless the budget runs out first.
    var duration: Double

    /// The owner of connection `connection`'s acquire number `seq` (counted from 0 on each connection).
    func owner(connection: Int, seq: Int32) -> String { ownerBase(connection: connection) + String(seq) }

    /// The fixed part of connection `connection`'s owners; the sequence number follows it.
    func ownerBase(connection: Int) -> String { "\(ownerPrefix)-\(connection)-" }

    /// Open loop: when connection `index` schedules its first acquire. The connections' schedules are spread
    /// evenly over one interval, so the offered load is smooth instead of arriving in bursts of `connections`.
    func firstIntendedNs(startNs: UInt64, connection index: Int) -> UInt64 {
        startNs + intervalNs * UInt64(index) / UInt64(max(1, connections))
    }

    /// The per-connection interval that offers `rate` acquires/s over `connections`; 0 (closed loop) for rate 0.
    static func intervalNs(rate: Double, connections: Int) -> UInt64 {
        rate > 0 ? UInt64((Double(connections) / rate * 1e9).rounded()) : 0
    }

    /// Acquires to send. Without release every acquire keeps an address, so the pool's free addresses counted at
    /// the start bound the run; with release every lease goes straight back, so nothing does.
    static func budget(release: Bool, free: Int) -> Int { release ? Int.max : free }

    /// Acquires that bring a pool of `usable` addresses, `free` of them free, to `percent` full: rounded up, none
    /// when it is already that full, never more than are free.
    static func prefillCount(percent: Double, usable: Int, free: Int) -> Int {
        let target = Int((percent / 100 * Double(usable)).rounded(.up))
        return max(0, min(free, target - (usable - free)))
    }
}

/// Agents mode: hosts that join, acquire host-bound leases, heartbeat, and as many connections that watch.
struct AgentPlan: Sendable {
    var target: BenchTarget
    /// Agents join as `<hostPrefix>-<number>`.
    var hostPrefix: String
    /// Agents, each with a connection that joins and heartbeats and one that watches.
    var agents: Int
    /// Host-bound leases each agent acquires after its join.
    var leasesEach: Int
    /// Each agent's heartbeat period.
    var heartbeatNs: UInt64
    /// Seconds the joined agents stay, heartbeating and watching, once all are up.
    var holdSeconds: Double

    /// The name agent `number` joins as.
    func host(_ number: Int) -> String { "\(hostPrefix)-\(number)" }

    /// The fixed part of agent `number`'s lease owners; the lease's sequence number follows it.
    func ownerBase(_ number: Int) -> String { host(number) + "-" }

    /// Agent `number`'s underlay address, from 100.64.0.0/10 (shared address space): unique per agent and never
    /// routed here, since the bench's agents build no tunnels.
    static func underlay(_ number: Int) -> IPv4Address { IPv4Address(0x6440_0000 &+ UInt32(number) &+ 1) }
}

/// Shared between the connections of one run: the acquire budget and when it ran out.
final class RunShared: Sendable {
    let budget: Atomic<Int>
    /// When the first connection found the budget spent (0: not yet).
    let exhaustedAtNs = Atomic<UInt64>(0)

    init(budget: Int) { self.budget = Atomic(budget) }

    /// Takes one acquire from the budget; false when none is left, and then `now` is recorded as the time the
    /// budget ran out unless an earlier one is.
    func take(now: UInt64) -> Bool {
        let old = budget.wrappingSubtract(1, ordering: .relaxed).oldValue
        if old <= 0 {
            budget.wrappingAdd(1, ordering: .relaxed)
            _ = exhaustedAtNs.compareExchange(expected: 0, desired: now, ordering: .relaxed)
            return false
        }
        return true
    }
}
