import NetleaseTransport
import Synchronization

struct LoadPlan: Sendable {
    var endpoint: Endpoint
    var secret: String?
    var network: String
    var ownerPrefix: String
    var connections: Int
    var pipeline: Int
    /// Per-connection interval between scheduled acquires (open loop); 0 = closed loop.
    var intervalNs: UInt64
    var release: Bool
    /// Most acquires to send over all connections.
    var budget: Int
    var duration: Double
}

struct AgentPlan: Sendable {
    var endpoint: Endpoint
    var secret: String?
    var network: String
    var hostPrefix: String
    var agents: Int
    var leasesEach: Int
    var heartbeatNs: UInt64
    var holdSeconds: Double
}

/// Shared between the handlers of one run.
final class RunShared: Sendable {
    let budget: Atomic<Int>
    let exhaustedAtNs = Atomic<UInt64>(0)

    init(budget: Int) { self.budget = Atomic(budget) }

    /// Takes one acquire from the budget; false when none is left.
    func take() -> Bool {
        let old = budget.wrappingSubtract(1, ordering: .relaxed).oldValue
        if old <= 0 {
            budget.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        return true
    }
}
