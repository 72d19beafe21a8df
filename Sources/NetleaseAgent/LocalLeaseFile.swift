import Foundation
import HostNetwork
import NetleaseCore

/// What this agent leased, kept on disk so a restarted agent knows its containers: it reconciles them with the
/// coordinator, answers repeated requests without probing its own containers, and can detach them later.
///
/// A record is written before the coordinator is asked (state `pending`), so that an agent killed in the middle of
/// a request — while the coordinator's answer is on its way, while probing, while plumbing — finds at its next
/// start exactly which requests never finished and undoes them: nothing is leased for this host that no record
/// names.
public struct LocalLease: Codable, Sendable, Equatable {
    /// Where the request that wrote a record stands.
    public enum State: String, Codable, Sendable {
        /// Asked for, not handed out yet: the coordinator may or may not have answered; the address may be probing;
        /// the container may be half plumbed.
        case pending
        /// Handed out (and, for ATTACH, plumbed).
        case ready
        /// Leased under a placeholder owner ahead of demand and fully probed; handed to the next new owner.
        case pooled
    }

    public var network: String
    public var owner: String
    /// Empty while the coordinator has not answered.
    public var address: String
    public var prefix: Int
    public var ifname: String
    /// Set when the agent plumbs the container itself (ATTACH); nil for leases handed to a CNI runtime.
    public var netns: String?
    public var state: State
    /// The container end's MAC when the agent plumbed it.
    public var mac: String?
    /// For a request served from the pool: the placeholder owner whose address it takes over.
    public var from: String?
    /// The namespace the agent plumbed (ATTACH), as the kernel identifies it. The path in `netns` may lead to
    /// another namespace later (`ip netns del web1; ip netns add web1`, a reused PID); only this one is repaired,
    /// inspected or detached. Nil in records of older releases and where the kernel cannot tell (before Linux
    /// 5.14): such a container is never re-plumbed by the agent on its own.
    public var netnsIdentity: NamespaceIdentity?

    public init(
        network: String,
        owner: String,
        address: IPv4Address?,
        prefix: Int,
        ifname: String,
        netns: String?,
        state: State = .ready,
        mac: String? = nil,
        from: String? = nil,
        netnsIdentity: NamespaceIdentity? = nil
    ) {
        self.network = network
        self.owner = owner
        self.address = address?.description ?? ""
        self.prefix = prefix
        self.ifname = ifname
        self.netns = netns
        self.state = state
        self.mac = mac
        self.from = from
        self.netnsIdentity = netnsIdentity
    }

    /// Files written before records had a state hold only handed-out leases.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        network = try c.decode(String.self, forKey: .network)
        owner = try c.decode(String.self, forKey: .owner)
        address = try c.decode(String.self, forKey: .address)
        prefix = try c.decode(Int.self, forKey: .prefix)
        ifname = try c.decode(String.self, forKey: .ifname)
        netns = try c.decodeIfPresent(String.self, forKey: .netns)
        state = try c.decodeIfPresent(State.self, forKey: .state) ?? .ready
        mac = try c.decodeIfPresent(String.self, forKey: .mac)
        from = try c.decodeIfPresent(String.self, forKey: .from)
        netnsIdentity = try c.decodeIfPresent(NamespaceIdentity.self, forKey: .netnsIdentity)
    }

    public var ipv4: IPv4Address? { IPv4Address(address) }
    var key: String { Self.key(network: network, owner: owner) }
    static func key(network: String, owner: String) -> String { "\(network)/\(owner)" }
}

/// `leases.json` in the state directory, replaced atomically on every change (see `LocalFileSystem`).
final class LocalLeaseFile: @unchecked Sendable {
    // @unchecked: `leases` is only touched under `lock`.
    private let lock = NSLock()
    private var leases: [String: LocalLease]
    private let files: LocalFileSystem
    let path: String

    init(directory: String, files: LocalFileSystem) throws {
        self.files = files
        try files.createDirectory(directory, mode: 0o700)
        path = (directory as NSString).appendingPathComponent("leases.json")
        if let data = files.contents(of: path), !data.isEmpty {
            do {
                let list = try JSONDecoder().decode([LocalLease].self, from: data)
                leases = Dictionary(list.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
            } catch {
                throw NetleaseError(
                    .storage,
                    "cannot read \(path): \(error); move it away to start with no local leases"
                )
            }
        } else {
            leases = [:]
        }
    }

    var all: [LocalLease] {
        lock.withLock { leases.values.sorted { ($0.network, $0.owner) < ($1.network, $1.owner) } }
    }

    func lease(network: String, owner: String) -> LocalLease? {
        lock.withLock { leases[LocalLease.key(network: network, owner: owner)] }
    }

    /// Records a lease; when the file cannot be written, neither memory nor disk changes.
    func put(_ lease: LocalLease) throws {
        try lock.withLock {
            var updated = leases
            updated[lease.key] = lease
            try save(updated)
            leases = updated
        }
    }

    /// Forgets the records of `removing` (network, owner) and records `putting` (if any), in one write: a hand-over
    /// from the pool never shows both records or neither.
    func update(removing: [(network: String, owner: String)], putting: LocalLease?) throws {
        try lock.withLock {
            var updated = leases
            for (network, owner) in removing {
                updated.removeValue(forKey: LocalLease.key(network: network, owner: owner))
            }
            if let putting { updated[putting.key] = putting }
            try save(updated)
            leases = updated
        }
    }

    /// Forgets a lease; when the file cannot be written, neither memory nor disk changes.
    func remove(network: String, owner: String) throws {
        try lock.withLock {
            var updated = leases
            guard updated.removeValue(forKey: LocalLease.key(network: network, owner: owner)) != nil else { return }
            try save(updated)
            leases = updated
        }
    }

    private func save(_ leases: [String: LocalLease]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try files.writeAtomically(encoder.encode(leases.values.sorted { $0.key < $1.key }), to: path, mode: 0o600)
    }
}
