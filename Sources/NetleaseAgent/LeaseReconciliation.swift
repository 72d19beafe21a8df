import Logging
import NetleaseClient
import NetleaseCore
import NetleaseWire

extension Agent {
    /// Tells the coordinator what this host actually uses; records and logs every disagreement, changes nothing.
    /// Leases the coordinator had no record of and recorded again are counted: when the host was not fenced, their
    /// loss means the coordinator's store lost acknowledged changes, which doctor reports.
    func reconcileLocalLeases(_ control: NetleaseConnection, claim: HostClaim) async {
        var disagreements: [String] = []
        var adopted = 0
        // Pending records are requests that never finished: recovery undoes them instead.
        for local in leases.all where local.state != .pending {
            guard configuration.networks.contains(local.network), let address = local.ipv4 else { continue }
            do {
                let outcome = try await control.reconcile(
                    ReconcileRequest(
                        network: local.network,
                        owner: local.owner,
                        address: address,
                        ifname: local.ifname,
                        claim: claim
                    )
                )
                if local.state == .pooled {
                    // A pooled address someone else holds now is simply no pool address any more.
                    if case .taken = outcome { try leases.remove(network: local.network, owner: local.owner) }
                    if case .moved = outcome { try leases.remove(network: local.network, owner: local.owner) }
                    continue
                }
                switch outcome {
                case .held:
                    continue
                case .adopted:
                    adopted += 1
                    logger.notice(
                        "coordinator re-recorded a lease this host still uses",
                        metadata: ["network": "\(local.network)", "address": "\(address)", "owner": "\(local.owner)"]
                    )
                case .taken(let holder):
                    // A host credential is not shown another host's owner: the record names the host only.
                    let holderName = holder.owner.isEmpty ? "" : " by '\(holder.owner)'"
                    disagreements.append(
                        "\(local.network) \(address): used here by '\(local.owner)' but held\(holderName) on host "
                            + "'\(dash(holder.host))' (\(holder.state.rawValue))"
                    )
                case .moved(let current):
                    disagreements.append(
                        "\(local.network) '\(local.owner)': uses \(address) here but the coordinator gave it "
                            + "\(current.address)"
                    )
                }
            } catch {
                disagreements.append("\(local.network) \(address): reconcile failed: \(error)")
            }
        }
        for text in disagreements {
            logger.error("lease disagreement with the coordinator", metadata: ["detail": "\(text)"])
        }
        let forgotten = state.withLock { s -> Bool in
            s.disagreements = disagreements
            s.readopted = adopted
            defer { s.fenced = false }
            guard adopted > 0, !s.fenced else { return false }
            s.storeWarning =
                "the coordinator had no record of \(adopted) lease(s) this host held without interruption: "
                + "its store lost acknowledged changes (restored from an older backup?); they were recorded again"
            return true
        }
        if forgotten { logger.error("coordinator forgot leases of this host", metadata: ["count": "\(adopted)"]) }
    }

    private func dash(_ text: String) -> String { text.isEmpty ? "-" : text }
}
