import Foundation

/// The identity of the coordinator's store as this agent last saw it: its id and how many commits it had made.
/// Kept across agent restarts so a coordinator restored from an older backup is noticed even then.
struct StoreMark: Codable, Sendable, Equatable {
    var id: String
    var generation: Int64
    /// The epoch of this host's last join (absent in files of older agents): stated in the next JOIN, so the host
    /// never gets an epoch it had before, even from a coordinator restored from an older backup.
    var epoch: Int64?

    /// What happened to the store since `previous`, for an operator; nil when nothing suspicious did. A store
    /// that names no id (an old coordinator) is never suspicious.
    func change(since previous: StoreMark) -> String? {
        guard !id.isEmpty else { return nil }
        if previous.id != id {
            return "the coordinator's store changed from \(previous.id) to \(id): its data was replaced; "
                + "this host's leases were reconciled against it"
        }
        if generation < previous.generation {
            return "the coordinator's store went back from generation \(previous.generation) to "
                + "\(generation): it was restored from an older backup; this host's leases were reconciled"
        }
        return nil
    }
}

/// `coordinator-store.json` in the state directory.
struct StoreMarkFile: Sendable {
    let path: String
    private let files: LocalFileSystem

    init(directory: String, files: LocalFileSystem) {
        path = (directory as NSString).appendingPathComponent("coordinator-store.json")
        self.files = files
    }

    /// The recorded mark; nil when there is none or it cannot be read (then the next join starts afresh).
    func load() -> StoreMark? {
        files.contents(of: path).flatMap { try? JSONDecoder().decode(StoreMark.self, from: $0) }
    }

    func save(_ mark: StoreMark) throws {
        try files.writeAtomically(JSONEncoder().encode(mark), to: path, mode: 0o600)
    }
}
