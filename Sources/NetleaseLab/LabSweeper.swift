import Foundation
import HostNetwork
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Removes what crashed runs left: the namespaces (and the processes inside them) of labs whose owning process is
/// gone, and the probe namespaces of `NamespaceLab.capabilityProblem` whose prober is gone.
///
/// Never touches a lab whose owner still runs (another suite, a parallel clone, a demo), a lab kept on purpose, or a
/// namespace it cannot attribute: a name that looks like a lab's but has no record in `LabRegistry` (an older build
/// or something else) is only reported. Ownership is decided by `LabRegistry.Owner.isAlive` (pid and start time).
public enum LabSweeper {
    public struct Report: Sendable, Equatable {
        /// Labs whose owner was gone, by id.
        public var sweptLabs: [String] = []
        public var removedNamespaces: [String] = []
        public var killedProcesses: [Int32] = []
        /// Lab-like namespaces without a record: left alone.
        public var unknownNamespaces: [String] = []

        public var isEmpty: Bool { sweptLabs.isEmpty && removedNamespaces.isEmpty && killedProcesses.isEmpty }

        public var summary: String {
            "swept \(sweptLabs.count) lab(s) of ended runs (\(sweptLabs.joined(separator: " "))): removed "
                + "\(removedNamespaces.count) namespace(s), killed \(killedProcesses.count) process(es)"
        }
    }

    /// The first call in this process sweeps; every later call awaits that same sweep. Root test bases call it
    /// before their first lab, so leftovers of a crashed run are gone before this run builds its own.
    public static func sweepOnce() async -> Report { await once.value }

    private static let once = Task { await sweep() }

    private static let reported = Atomic<Bool>(false)

    /// Prints what a sweep did (and the lab-like namespaces it left alone), once per process.
    public static func report(_ report: Report) {
        guard !reported.exchange(true, ordering: .relaxed) else { return }
        if !report.isEmpty { print("lab sweeper: \(report.summary)") }
        if !report.unknownNamespaces.isEmpty {
            print("lab sweeper: left alone, no owner on record: \(report.unknownNamespaces.joined(separator: " "))")
        }
    }

    /// Sweeps now. `netnsDirectory` is where `ip netns` keeps its names.
    public static func sweep(
        runner: any CommandRunner = ProcessCommandRunner(),
        netnsDirectory: String = "/var/run/netns"
    ) async -> Report {
        var report = Report()
        let namespaces = ((try? FileManager.default.contentsOfDirectory(atPath: netnsDirectory)) ?? []).sorted()
        let entries = LabRegistry.entries()
        let recorded = Set(entries.map(\.id))

        for entry in entries where !entry.kept && !entry.owner.isAlive {
            var complete = true
            for name in namespaces where name.hasPrefix("nl\(entry.id)-") {
                report.killedProcesses += await killProcesses(in: name, runner: runner)
                if (try? await runner.run(["ip", "netns", "del", name])) != nil {
                    report.removedNamespaces.append(name)
                } else {
                    complete = false
                }
            }
            // Only the lab's own directory, recognised by its name.
            if (entry.labDirectory as NSString).lastPathComponent == "netlease-lab-\(entry.id)" {
                try? FileManager.default.removeItem(atPath: entry.labDirectory)
            }
            if complete { LabRegistry.release(id: entry.id) }
            report.sweptLabs.append(entry.id)
        }

        for name in namespaces {
            if let owner = probeOwner(name) {
                if !owner.isAlive, (try? await runner.run(["ip", "netns", "del", name])) != nil {
                    report.removedNamespaces.append(name)
                }
            } else if let id = labID(name), !recorded.contains(id) {
                report.unknownNamespaces.append(name)
            }
        }
        return report
    }

    /// SIGKILLs every process in namespace `name` and waits (at most 5 s) until they are gone.
    static func killProcesses(in name: String, runner: any CommandRunner) async -> [Int32] {
        guard let output = try? await runner.run(["ip", "netns", "pids", name]) else { return [] }
        let pids = output.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        for pid in pids { kill(pid, SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(5)
        while pids.contains(where: { LabRegistry.stat(of: $0).map { $0.state != "Z" } ?? false }),
            ContinuousClock.now < deadline
        {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return pids
    }

    /// The lab id of a lab namespace name (`nl<4 hex>-…`), or nil.
    static func labID(_ name: String) -> String? {
        let characters = Array(name)
        guard characters.count > 7, name.hasPrefix("nl"), characters[6] == "-" else { return nil }
        let id = String(characters[2..<6])
        return id.allSatisfy(\.isHexDigit) ? id : nil
    }

    /// The owner encoded in a probe namespace name, `nlprobe-<pid>-<start time>-<n>`, or nil for any other name.
    static func probeOwner(_ name: String) -> LabRegistry.Owner? {
        guard name.hasPrefix(probePrefix) else { return nil }
        let parts = name.dropFirst(probePrefix.count).split(separator: "-")
        guard parts.count >= 2, let pid = Int32(parts[0]), let start = UInt64(parts[1]) else { return nil }
        return LabRegistry.Owner(pid: pid, startTime: start)
    }

    static let probePrefix = "nlprobe-"
}
