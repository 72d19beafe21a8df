/// What one connection saw.
struct ConnectionResult: Sendable {
    var index: Int
    var acquireLatencies: [UInt64] = []
    var releaseLatencies: [UInt64] = []
    var acquiresInWindow = 0
    var releasesInWindow = 0
    var lastReplyNs: UInt64 = 0
    var errors: [String: Int] = [:]
    /// (owner sequence, address) of acknowledged leases not released.
    var held: [(Int32, UInt32)] = []
    var releaseFailedSeqs: [Int32] = []
    /// Open loop: how late the client itself sent each request (actual send time − scheduled time).
    var sendLags: [UInt64] = []
    // Agents mode.
    var joinLatencies: [UInt64] = []
    var heartbeatLatencies: [UInt64] = []
    var events = 0

    init(index: Int) { self.index = index }

    /// (owner, address) of the acknowledged leases this connection still holds, owners named as `plan` names them.
    func heldOwners(_ plan: LoadPlan) -> [(String, UInt32)] {
        held.map { (plan.owner(connection: index, seq: $0.0), $0.1) }
    }

    /// Owners whose release failed: they may still be active, and the verification tolerates that.
    func releaseFailedOwners(_ plan: LoadPlan) -> [String] {
        releaseFailedSeqs.map { plan.owner(connection: index, seq: $0) }
    }
}
