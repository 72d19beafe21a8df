import Foundation
import HostNetwork

/// Whether this kernel should be able to do something a root test needs, decided by looking rather than trying, so
/// that a test can tell "the kernel lacks it" (not applicable here) from "the kernel has it and our code failed".
///
/// Design notes: the evidence, in the order it is consulted —
/// 1. `/sys/module/<module>` exists: the module is loaded, or built in (a built-in module with parameters, as
///    `ip_gre` has, shows there too). Expected.
/// 2. `/proc/config.gz` (the running kernel's own configuration): `=y` is built in, expected; `=m` is expected only
///    when `modprobe -n` finds the module file; not set is absent.
/// 3. Without a readable configuration: `modprobe -n <module>` succeeds (module file or built in) is expected, a
///    failure is absent.
/// 4. Nothing to go by (no configuration, no modprobe): expected — the features asked about are standard, and a
///    test must not pass as "not applicable" on a machine that merely hides its kernel.
public enum KernelSupport: Sendable, Equatable {
    /// The kernel should have the feature; the evidence says why.
    case expected(String)
    /// The kernel lacks the feature; the evidence says how that was seen.
    case absent(String)

    public var evidence: String {
        switch self {
        case .expected(let text), .absent(let text): return text
        }
    }

    /// `ip link add … type gretap`: module `ip_gre`, option `CONFIG_NET_IPGRE`.
    public static func gretap() -> KernelSupport {
        module("ip_gre", option: "CONFIG_NET_IPGRE")
    }

    /// Support for kernel module `name`, configured by `option`.
    public static func module(_ name: String, option: String) -> KernelSupport {
        if FileManager.default.fileExists(atPath: "/sys/module/\(name)") {
            return .expected("/sys/module/\(name) exists (loaded or built in)")
        }
        let modprobe = modprobeDryRun(name)
        if let configuration = runningConfiguration() {
            let value = configuration.split(separator: "\n").lazy
                .compactMap { line -> Substring? in
                    line.hasPrefix(option + "=") ? line.dropFirst(option.count + 1) : nil
                }
                .first
            switch value {
            case "y":
                return .expected("/proc/config.gz has \(option)=y")
            case "m":
                if let modprobe, modprobe.found {
                    return .expected("/proc/config.gz has \(option)=m and modprobe -n finds \(name)")
                }
                let detail = modprobe?.detail ?? "no modprobe"
                return .absent("/proc/config.gz has \(option)=m but the module is not installed: \(detail)")
            default:
                return .absent("/proc/config.gz does not set \(option) (no /sys/module/\(name) either)")
            }
        }
        if let modprobe {
            return modprobe.found
                ? .expected("modprobe -n \(name) succeeds") : .absent("modprobe -n \(name): \(modprobe.detail)")
        }
        return .expected("nothing tells otherwise (no /proc/config.gz, no modprobe): assumed present")
    }

    /// The running kernel's configuration, uncompressed; nil when /proc/config.gz is missing or unreadable.
    private static func runningConfiguration() -> String? {
        let path = "/proc/config.gz"
        guard FileManager.default.isReadableFile(atPath: path),
            let gzip = try? ProcessCommandRunner().resolve("gzip"),
            let output = try? ChildProcess.run(executable: gzip, arguments: ["-dc", path], timeout: .seconds(10)),
            output.termination == .exited(0)
        else { return nil }
        return String(decoding: output.stdout, as: UTF8.self)
    }

    /// `modprobe -n <name>` (a dry run: nothing is loaded); nil when modprobe is not installed.
    private static func modprobeDryRun(_ name: String) -> (found: Bool, detail: String)? {
        guard let modprobe = try? ProcessCommandRunner().resolve("modprobe"),
            let output = try? ChildProcess.run(executable: modprobe, arguments: ["-n", name], timeout: .seconds(10))
        else { return nil }
        let text = String(decoding: output.stderr + output.stdout, as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return (output.termination == .exited(0), text.isEmpty ? "\(output.termination)" : text)
    }
}
