import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU time and memory of this process and of the coordinator's, for the reports.
enum ProcessUsage {
    /// CPU seconds (user + system) this process used so far.
    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(Int32(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }

    /// CPU seconds (user + system) of another process, from /proc/PID/stat (10 ms resolution).
    static func cpuSeconds(of pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return cpuTicks(stat: text).map { $0 / Double(sysconf(Int32(_SC_CLK_TCK))) }
    }

    /// utime + stime in clock ticks from the text of /proc/PID/stat.
    static func cpuTicks(stat text: String) -> Double? {
        // The command name may hold spaces and parentheses: fields are counted after its last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name: field 3 is fields[0]; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return user + system
    }

    /// VmRSS and VmHWM of a process in KiB.
    static func memory(of pid: Int32) -> (rss: Int, hwm: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return memory(status: text)
    }

    /// VmRSS and VmHWM in KiB from the text of /proc/PID/status (0 when a line is missing).
    static func memory(status text: String) -> (rss: Int, hwm: Int) {
        var rss = 0
        var hwm = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2 else { continue }
            if line.hasPrefix("VmRSS:") { rss = Int(parts[1]) ?? 0 }
            if line.hasPrefix("VmHWM:") { hwm = Int(parts[1]) ?? 0 }
        }
        return (rss, hwm)
    }
}
