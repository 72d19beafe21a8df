import Foundation

/// What the agent handed out, as its `leases.json` records it (a JSON list of objects with at least `network` and
/// `owner`; the agent replaces the file atomically on every change and removes a record only after the
/// coordinator acknowledged the release). Read only while the agent cannot be asked: then it tells DEL whether a
/// lease may still be held.
enum AgentLeaseRecord {
    private struct Entry: Decodable {
        var network: String
        var owner: String
    }

    /// Whether the agent's records at `directory` hold `owner` in `network`; nil when they cannot be read (no such
    /// directory, an unreadable or undecodable file). A directory without the file holds nothing.
    static func holds(owner: String, network: String, in directory: String) -> Bool? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
        else { return nil }
        let path = (directory as NSString).appendingPathComponent("leases.json")
        guard FileManager.default.fileExists(atPath: path) else { return false }
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        if data.isEmpty { return false }
        guard let entries = try? JSONDecoder().decode([Entry].self, from: data) else { return nil }
        return entries.contains { $0.network == network && $0.owner == owner }
    }
}
