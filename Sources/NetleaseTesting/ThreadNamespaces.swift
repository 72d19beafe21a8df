import Foundation

/// The threads of this process that are in another network namespace than the process's main thread.
///
/// Dedicated threads enter a container's or a lab host's namespace to make a socket there (ICMP echo, ARP probe and
/// watch, the lab's ARP responder). A thread the runtime starts from such a thread inherits its namespace; a worker
/// of the cooperative pool started that way keeps it, and every socket later made on it — a test's listener, a
/// client connection, a child process spawned from it — lands in that namespace, long after the test that entered
/// it. Tests that enter namespaces check this list after each test, so such a leak fails the test that caused it
/// instead of an unrelated test minutes later ("connection refused" on loopback).
public enum ThreadNamespaces {
    /// Thread names (as in /proc/…/comm, at most 15 bytes) of the dedicated threads that may be inside a namespace
    /// while their work runs.
    static let dedicatedPrefixes = ["netlease-icmp", "netlease-arp", "lab-arp"]

    /// "tid (name): namespace" for every thread outside the main thread's network namespace, dedicated ones left out.
    public static func strays() -> [String] {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? ""
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        var found: [String] = []
        for tid in tasks.sorted() {
            // A thread that exits meanwhile has no entries any more: skipped.
            guard
                let namespace = try? FileManager.default.destinationOfSymbolicLink(
                    atPath: "/proc/self/task/\(tid)/ns/net"
                ),
                namespace != own
            else { continue }
            let name =
                (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            guard !dedicatedPrefixes.contains(where: { name.hasPrefix($0) }) else { continue }
            found.append("\(tid) (\(name)): \(namespace)")
        }
        return found
    }
}
