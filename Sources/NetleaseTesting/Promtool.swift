import Foundation
import HostNetwork

/// Tools from Debian's `prometheus` package that tests use as the metrics' real consumers. Without them the tests
/// skip, unless NETLEASE_REQUIRE_NETNS=1 (CI), which makes a missing tool a failure.
public enum PrometheusTools {
    /// The Debian package that brings `prometheus` and `promtool`.
    public static let package = "prometheus"

    /// A missing tool fails the test instead of skipping it.
    public static var required: Bool { ProcessInfo.processInfo.environment["NETLEASE_REQUIRE_NETNS"] == "1" }

    /// The absolute path of `name` on PATH (or in /usr/bin), or nil.
    public static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/bin"] {
            let candidate = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// `promtool check metrics` on `text` (handed over on stdin): nil when promtool accepts it, else what it said.
    public static func checkMetrics(_ text: String, promtool: String) throws -> String? {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let output = try ChildProcess.run(
            executable: "/bin/sh",
            arguments: ["-c", #"exec "$0" check metrics < "$1""#, promtool, file.path],
            timeout: .seconds(30)
        )
        guard output.termination == .exited(0) else {
            let said = String(decoding: output.stdout + output.stderr, as: UTF8.self)
            return "promtool \(output.termination): \(said)"
        }
        return nil
    }
}
