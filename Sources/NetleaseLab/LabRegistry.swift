import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Which process owns which lab, recorded where every lab on the machine can see it: one file per lab id in
/// `/run/netlease-lab` (a tmpfs, emptied at boot, writable by root only — labs need root anyway).
///
/// Design notes:
/// - Machine-wide, not in the lab's own directory: each test run may have its own TMPDIR (parallel clones do), so a
///   sweeper looking in its own temporary directory would never see another run's labs — and must not guess about
///   them either.
/// - The owner is a pid and that process's start time (`/proc/<pid>/stat`, field 22): a pid alone may belong to a
///   new process by the time anyone looks.
/// - Creating the file with O_EXCL reserves the id: two labs started at once never share one.
/// - A lab whose owner leaves it running on purpose (`netlease demo --keep`) is marked kept and never swept.
public enum LabRegistry {
    /// Where the owner files live.
    public static let directory = "/run/netlease-lab"

    /// A process, told apart from any later process that reuses its pid.
    public struct Owner: Equatable, Sendable, CustomStringConvertible {
        public var pid: Int32
        public var startTime: UInt64

        public init(pid: Int32, startTime: UInt64) {
            self.pid = pid
            self.startTime = startTime
        }

        /// This process.
        public static var current: Owner { Owner(pid: getpid(), startTime: LabRegistry.startTime(of: getpid()) ?? 0) }

        /// Whether this very process still runs (a zombie counts as ended).
        public var isAlive: Bool {
            guard let stat = LabRegistry.stat(of: pid) else { return false }
            return stat.startTime == startTime && stat.state != "Z" && stat.state != "X"
        }

        public var description: String { "pid \(pid) (started at tick \(startTime))" }
    }

    /// One lab's record.
    public struct Entry: Equatable, Sendable {
        public var id: String
        public var owner: Owner
        /// The lab's directory (under its owner's TMPDIR).
        public var labDirectory: String
        public var kept: Bool
    }

    public enum Reservation: Equatable {
        case reserved
        /// Another lab holds this id: pick another.
        case taken
        /// No registry here (not root, no /run): the lab is not recorded, so no sweeper ever removes it.
        case unavailable
    }

    static func path(of id: String) -> String { (directory as NSString).appendingPathComponent(id) }

    /// Records this process as the owner of lab `id`, unless another lab holds the id.
    static func reserve(id: String, labDirectory: String) -> Reservation {
        guard mkdir(directory, 0o700) == 0 || errno == EEXIST else { return .unavailable }
        let fd = open(path(of: id), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return errno == EEXIST ? .taken : .unavailable }
        defer { close(fd) }
        let text = render(Entry(id: id, owner: .current, labDirectory: labDirectory, kept: false))
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            unlink(path(of: id))
            return .unavailable
        }
        return .reserved
    }

    /// Marks lab `id` as left running on purpose: no sweeper removes it.
    static func markKept(id: String) {
        guard var entry = entry(id: id) else { return }
        entry.kept = true
        try? Data(render(entry).utf8).write(to: URL(fileURLWithPath: path(of: id)))
    }

    static func release(id: String) { unlink(path(of: id)) }

    /// Every recorded lab; unreadable files are skipped.
    public static func entries() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().compactMap { entry(id: $0) }
    }

    static func entry(id: String) -> Entry? {
        guard let text = try? String(contentsOfFile: path(of: id), encoding: .utf8) else { return nil }
        var fields: [String: String] = [:]
        var kept = false
        for line in text.split(separator: "\n") {
            if line == "kept" {
                kept = true
                continue
            }
            guard let space = line.firstIndex(of: " ") else { continue }
            fields[String(line[..<space])] = String(line[line.index(after: space)...])
        }
        guard let pid = fields["pid"].flatMap(Int32.init), let start = fields["start"].flatMap(UInt64.init) else {
            return nil
        }
        return Entry(
            id: id,
            owner: Owner(pid: pid, startTime: start),
            labDirectory: fields["directory"] ?? "",
            kept: kept
        )
    }

    static func render(_ entry: Entry) -> String {
        "pid \(entry.owner.pid)\nstart \(entry.owner.startTime)\ndirectory \(entry.labDirectory)\n"
            + (entry.kept ? "kept\n" : "")
    }

    /// Start time (clock ticks after boot) of `pid`, or nil when there is no such process.
    public static func startTime(of pid: Int32) -> UInt64? { stat(of: pid)?.startTime }

    /// State letter and start time from `/proc/<pid>/stat`. The command name (field 2) may hold spaces and
    /// parentheses, so fields are counted after its last ')'.
    static func stat(of pid: Int32) -> (state: Character, startTime: UInt64)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (state, start)
    }
}
