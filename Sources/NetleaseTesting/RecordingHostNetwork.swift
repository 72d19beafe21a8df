import HostNetwork
import NetleaseCore
import Synchronization

/// A `HostNetworking` that changes nothing: it records every call so agent tests can assert what the agent asked
/// for, and answers with scripted verify failures or errors.
public final class RecordingHostNetwork: HostNetworking {
    /// One call the code under test made.
    public enum Call: Sendable, Equatable {
        case ensureNetwork(HostNetworkConfig)
        case verify(HostNetworkConfig)
        case checkNamespace(NetworkNamespace)
        case attach(ContainerAttachment)
        case inspect(ContainerAttachment)
        case containerPorts(bridge: String)
        case detach(network: String, owner: String)
        case teardown(network: String)
        case reachable(IPv4Address)
    }

    private struct State: Sendable {
        var calls: [Call] = []
        var verifyFailures: [VerifyFailure] = []
        /// Failures `verify` reports until the next `ensureNetwork` repairs them.
        var drift: [VerifyFailure] = []
        /// Whether `verify` compares a configuration's peers with those the last `ensureNetwork` applied.
        var tracksPeers = false
        /// The peers each network's last `ensureNetwork` applied.
        var appliedPeers: [String: [String: IPv4Address]] = [:]
        var error: HostNetworkError?
        var unreachable: Set<IPv4Address> = []
        var attached: Set<String> = []
        /// Host ends of the containers attached through this fake and not detached.
        var attachedPorts: [String] = []
        var problems: [String: [String]] = [:]
        var refused: Set<NetworkNamespace> = []
        var foreignPorts: [String] = []
        var identities: [NetworkNamespace: NamespaceIdentity] = [:]
    }

    /// The identity of every namespace whose identity is not scripted.
    public static let defaultIdentity = NamespaceIdentity(boot: "recording", cookie: 1, inode: 4_026_531_841)

    private let state = Mutex(State())

    public init() {}

    /// Every call so far, in order.
    public var calls: [Call] { state.withLock { $0.calls } }

    /// What `verify` returns from now on (empty: all checks pass).
    public func setVerifyFailures(_ failures: [VerifyFailure]) { state.withLock { $0.verifyFailures = failures } }

    /// Drift of the host network: `verify` reports these failures (after the scripted ones) until the next
    /// `ensureNetwork`, which repairs them, as the real host network's ensure does.
    public func setDrift(_ failures: [VerifyFailure]) { state.withLock { $0.drift = failures } }

    /// From now on `verify` of a configuration whose peers differ from those the network's last `ensureNetwork`
    /// applied reports `tunnel-fdb`, as the real host's forwarding entries would.
    public func trackPeers() { state.withLock { $0.tracksPeers = true } }

    /// Addresses `reachable` answers false for from now on.
    public func setUnreachable(_ addresses: Set<IPv4Address>) { state.withLock { $0.unreachable = addresses } }

    /// Namespaces `checkNamespace` refuses from now on (default: none).
    public func setRefusedNamespaces(_ namespaces: Set<NetworkNamespace>) {
        state.withLock { $0.refused = namespaces }
    }

    /// The namespace now at `namespace`'s path, as `attach` reports it and compares it with a link's
    /// `namespaceIdentity` (default: `defaultIdentity`).
    public func setIdentity(_ identity: NamespaceIdentity, of namespace: NetworkNamespace) {
        state.withLock { $0.identities[namespace] = identity }
    }

    private func identity(of namespace: NetworkNamespace) -> NamespaceIdentity {
        state.withLock { $0.identities[namespace] } ?? Self.defaultIdentity
    }

    /// Why the namespace at the link's path is not the one the link names; nil when it is (or the link does not say).
    private func replacement(_ link: ContainerLink) -> String? {
        let now = identity(of: link.namespace)
        guard let expected = link.namespaceIdentity, expected != now else { return nil }
        return "\(link.namespace) is now \(now), not \(expected): the container is gone"
    }

    /// Container veths `containerPorts` lists besides those of the containers attached through this fake.
    public func setForeignPorts(_ ports: [String]) { state.withLock { $0.foreignPorts = ports } }

    /// What `inspect` reports for an owner's container from now on (default: nothing wrong).
    public func setProblems(_ problems: [String], owner: String) { state.withLock { $0.problems[owner] = problems } }

    /// An error every call throws from now on (after recording itself); nil to stop failing.
    public func setError(_ error: HostNetworkError?) { state.withLock { $0.error = error } }

    private func record(_ call: Call) throws {
        if let error = state.withLock({ state -> HostNetworkError? in
            state.calls.append(call)
            return state.error
        }) {
            throw error
        }
    }

    public func ensureNetwork(_ config: HostNetworkConfig) async throws -> NetworkReport {
        try record(.ensureNetwork(config))
        state.withLock {
            $0.drift = []
            $0.appliedPeers[config.network] = config.peers
        }
        let mtu = config.effectiveMTU(underlayMTU: config.underlayMTU ?? 1500)
        return NetworkReport(bridge: config.bridge, mtu: mtu, changes: [])
    }

    public func verify(_ config: HostNetworkConfig) async throws -> [VerifyFailure] {
        try record(.verify(config))
        return state.withLock { state in
            var failures = state.verifyFailures + state.drift
            if state.tracksPeers, let applied = state.appliedPeers[config.network], applied != config.peers {
                failures.append(
                    VerifyFailure(
                        check: .tunnelFDB,
                        detail: "entries for \(applied.keys.sorted()), peers \(config.peers.keys.sorted())"
                    )
                )
            }
            return failures
        }
    }

    public func checkNamespace(_ namespace: NetworkNamespace) async throws {
        try record(.checkNamespace(namespace))
        if state.withLock({ $0.refused.contains(namespace) }) {
            throw HostNetworkError(.invalidConfiguration, "\(namespace) is refused")
        }
    }

    public func attach(_ attachment: ContainerAttachment) async throws -> AttachedContainer {
        try record(.attach(attachment))
        if let replaced = replacement(attachment.link) { throw HostNetworkError(.namespaceReplaced, replaced) }
        let created = state.withLock { state -> Bool in
            guard state.attached.insert(attachment.network + "/" + attachment.owner).inserted else { return false }
            state.attachedPorts.append(attachment.hostInterface)
            return true
        }
        return AttachedContainer(
            hostInterface: attachment.hostInterface,
            containerInterface: attachment.ifname,
            containerMAC: attachment.link.containerMAC,
            mtu: attachment.mtu > 0 ? attachment.mtu : 1450,
            changes: [],
            created: created,
            namespaceIdentity: identity(of: attachment.namespace)
        )
    }

    public func inspect(_ attachment: ContainerAttachment) async throws -> [String] {
        try record(.inspect(attachment))
        if let replaced = replacement(attachment.link) { return [replaced] }
        return state.withLock { $0.problems[attachment.owner] ?? [] }
    }

    public func containerPorts(bridge: String) async throws -> [String] {
        try record(.containerPorts(bridge: bridge))
        return state.withLock { state in (state.attachedPorts + state.foreignPorts).sorted() }
    }

    public func detach(_ link: ContainerLink) async throws {
        try record(.detach(network: link.network, owner: link.owner))
        state.withLock { state in
            state.attached.remove(link.network + "/" + link.owner)
            state.attachedPorts.removeAll { $0 == link.hostInterface }
        }
    }

    public func teardown(network: String) async throws {
        try record(.teardown(network: network))
    }

    public func reachable(_ address: IPv4Address) async -> Bool {
        state.withLock { state in
            state.calls.append(.reachable(address))
            return !state.unreachable.contains(address)
        }
    }
}
