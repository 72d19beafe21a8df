/// Time the coordinator did not observe never counts against a host (DESIGN.md invariant 7).
///
/// A coordinator that was stopped (SIGSTOP, a paused VM, a starved process) heard no heartbeat meanwhile, although
/// the hosts kept sending them into a frozen socket. Its clock moved on all the same, so the first reclaim pass after
/// the stall would find every host silent for the whole stall and declare live hosts lost. The reclaimer measures
/// such stalls on the monotonic clock (`Reclaimer`) and hands the unobserved time in here, where it moves every up
/// host's deadline on by as much, under the same lock as the reclaim it precedes.
extension Ledger {
    /// Extends every up host's deadline by `unobserved` milliseconds (never past `now`: a host heard from after the
    /// stall is already current), then reclaims as `reclaim(now:changes:)` does.
    public mutating func reclaim(now: Millis, unobserved: Millis, changes: inout [LedgerChange]) -> [String] {
        if unobserved > 0 {
            for (name, var host) in hosts where host.state == .up {
                host.lastHeartbeat = min(host.lastHeartbeat + unobserved, max(host.lastHeartbeat, now))
                hosts[name] = host
            }
        }
        return reclaim(now: now, changes: &changes)
    }
}
