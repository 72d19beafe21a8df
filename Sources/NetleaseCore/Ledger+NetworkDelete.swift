/// Deleting a network that hosts still serve: refused (PROTOCOL.md, NETWORK-DELETE).
///
/// A host that serves a network keeps its bridge — with its bridge address, the containers' gateway — and its
/// tunnels, whatever the coordinator forgets. Were the network deleted and created again, the new network's pool
/// would know nothing of that address and hand it to a container: two devices with one address on one segment. So
/// the delete is refused while any host lists the network, up or lost (a lost host may be cut off, not gone, its
/// agent still serving); the error names them. Fencing is explicit: an agent restarted without the network joins
/// again without it, and `HOST-REMOVE` retires a host for good.
extension Ledger {
    /// Throws `conflict` naming every host that still serves `name`.
    func checkNoHostServes(_ name: String) throws {
        let serving = hosts.values.filter { $0.networks.contains(name) }.sorted { $0.name < $1.name }
        guard !serving.isEmpty else { return }
        let shown = serving.prefix(10).map { "\($0.name) (\($0.state.rawValue))" }.joined(separator: ", ")
        let more = serving.count > 10 ? " and \(serving.count - 10) more" : ""
        throw NetleaseError.conflict(
            "network '\(name)' is served by host(s) \(shown)\(more); stop serving it there (restart those agents "
                + "without it) or remove hosts that are gone with HOST-REMOVE, then delete it"
        )
    }
}
