import HostNetwork
import Logging
import NetleaseCore

/// Self-healing host network: between joins and peer events, drift (someone ran `ip link set … nomaster`, deleted
/// the bridge, changed its MTU, flushed a forwarding entry) would otherwise stay until someone runs `doctor`. Like
/// Calico's Felix re-syncing its dataplane on a timer, the agent re-verifies every served network every
/// `AgentConfiguration.resyncInterval` (jittered ±20 %, so hosts do not act in step) and repairs what differs
/// through the same observe → plan → apply path as at join (`HostNetworking.ensureNetwork`, which changes only
/// what its plan finds different). Only the network's bridge, tunnels and forwarding entries are checked and
/// repaired: containers' own interfaces are never touched here (`doctor` reports their drift).
///
/// Each repair is logged (notice, one line per kind of check that failed) with what was found and what was changed,
/// and counted by that kind (`netlease_agent_repairs_total{network,kind}`). A repair after which the network still
/// fails its checks is logged at warning level every round and makes `/readyz` fail until a later round finds the
/// network whole.
extension Agent {
    /// Re-verifies and repairs every served network until cancelled; returns at once without an interval.
    func resyncNetworks() async throws {
        guard let interval = configuration.resyncInterval else { return }
        while !Task.isCancelled {
            try await Task.sleep(for: interval * Double.random(in: 0.8...1.2))
            await resyncOnce()
        }
    }

    /// One round over the networks of the live session; nothing without one (a new session builds them anyway).
    /// Each network is checked under the mesh lock, against its configuration as it is then: a peer change applied
    /// meanwhile is what the host must match, not drift to undo.
    func resyncOnce() async {
        guard let names = state.withLock({ $0.session?.networks.keys.sorted() }) else { return }
        for name in names {
            await withMeshLock {
                guard let config = state.withLock({ $0.session?.networks[name]?.config }) else { return }
                let unrepaired = await resync(name, config)
                // A network deleted at the coordinator meanwhile left the session: its failure leaves /readyz too.
                state.withLock { $0.resyncFailures[name] = $0.session?.networks[name] == nil ? nil : unrepaired }
            }
        }
    }

    /// Verifies one network and repairs it when it drifted; returns what is still wrong afterwards (nil: nothing).
    private func resync(_ name: String, _ config: HostNetworkConfig) async -> String? {
        do {
            let drift = try await hostNetwork.verify(config)
            guard !drift.isEmpty else { return nil }
            let report = try await hostNetwork.ensureNetwork(config)
            let left = try await hostNetwork.verify(config)
            let repaired = Set(drift.map(\.check)).subtracting(left.map(\.check))
            for kind in repaired.sorted(by: { $0.rawValue < $1.rawValue }) {
                metrics.repaired(network: name, kind: kind.rawValue)
                logger.notice(
                    "repaired host network drift",
                    metadata: [
                        "network": "\(name)", "kind": "\(kind.rawValue)",
                        "found": "\(drift.filter { $0.check == kind }.map(\.detail).joined(separator: "; "))",
                        "changed": "\(report.changes.joined(separator: "; "))",
                    ]
                )
            }
            guard !left.isEmpty else { return nil }
            let text = left.map(\.description).joined(separator: "; ")
            logger.warning("host network repair did not take", metadata: ["network": "\(name)", "left": "\(text)"])
            return text
        } catch {
            logger.warning("host network repair failed", metadata: ["network": "\(name)", "error": "\(error)"])
            return "\(error)"
        }
    }
}
