import Foundation
import NetleaseCore

/// What this agent handed out, kept on disk so a restarted agent knows its containers: it reconciles them with the
/// coordinator, answers repeated requests without probing its own containers, and can detach them later.
public struct LocalLease: Codable, Sendable, Equatable {
    public var network: String
    public var owner: String
    public var address: String
    public var prefix: Int
    public var ifname: String
    /// Set when the agent plumbed the container itself (ATTACH); nil for leases handed to a CNI runtime.
    public var netns: String?

    public init(network: String, owner: String, address: IPv4Address, prefix: Int, ifname: String, netns: String?) {
        self.network = network
        self.owner = owner
        self.address = address.description
        self.prefix = prefix
        self.ifname = ifname
        self.netns = netns
    }

    public var ipv4: IPv4Address? { IPv4Address(address) }
    var key: String { "\(network)/\(owner)" }
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

    func lease(network: String, owner: String) -> LocalLease? { lock.withLock { leases["\(network)/\(owner)"] } }

    /// Records a lease; when the file cannot be written, neither memory nor disk changes.
    func put(_ lease: LocalLease) throws {
        try lock.withLock {
            var updated = leases
            updated[lease.key] = lease
            try save(updated)
            leases = updated
        }
    }

    /// Forgets a lease; when the file cannot be written, neither memory nor disk changes.
    func remove(network: String, owner: String) throws {
        try lock.withLock {
            var updated = leases
            guard updated.removeValue(forKey: "\(network)/\(owner)") != nil else { return }
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
