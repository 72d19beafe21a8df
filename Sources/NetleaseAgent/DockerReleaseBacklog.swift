import Foundation
import NetleaseCore

/// Releases Docker asked for while the agent could not reach the coordinator, kept on disk until they are done.
///
/// Docker never repeats a failed `ReleaseAddress`: it logs a warning and forgets the endpoint. Answering it with an
/// error would leave the lease active for good — the host's heartbeats keep renewing it. So the release is recorded
/// here (`docker-releases.json` in the state directory), Docker is told it succeeded, and the agent finishes it once
/// a session is back. The lease also leaves the agent's own record at once, so the reconcile after a reconnect does
/// not report it as still in use.
final class DockerReleaseBacklog: @unchecked Sendable {
    // @unchecked: `entries` is only touched under `lock`.
    struct Entry: Codable, Sendable, Equatable {
        var network: String
        var owner: String
        var address: String
    }

    private let lock = NSLock()
    private var entries: [Entry]
    private let files: LocalFileSystem
    let path: String

    init(directory: String, files: LocalFileSystem) throws {
        self.files = files
        path = (directory as NSString).appendingPathComponent("docker-releases.json")
        if let data = files.contents(of: path), !data.isEmpty {
            do {
                entries = try JSONDecoder().decode([Entry].self, from: data)
            } catch {
                throw NetleaseError(.storage, "cannot read \(path): \(error); move it away to start without it")
            }
        } else {
            entries = []
        }
    }

    var all: [Entry] { lock.withLock { entries } }

    /// Records a release to finish later; when the file cannot be written, nothing changes.
    func add(_ entry: Entry) throws {
        try lock.withLock {
            guard !entries.contains(entry) else { return }
            let updated = entries + [entry]
            try save(updated)
            entries = updated
        }
    }

    /// Forgets a release that was done.
    func remove(_ entry: Entry) throws {
        try lock.withLock {
            let updated = entries.filter { $0 != entry }
            guard updated.count != entries.count else { return }
            try save(updated)
            entries = updated
        }
    }

    private func save(_ entries: [Entry]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try files.writeAtomically(encoder.encode(entries), to: path, mode: 0o600)
    }
}
