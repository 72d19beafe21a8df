import Foundation
import NetleaseCore

/// Where the package's executables were built, for tests that run them as child processes.
public enum Executables {
    /// The executable `name` (e.g. "netlease") next to the test bundle, or NETLEASE_BINARY for "netlease".
    public static func path(_ name: String = "netlease") throws -> String {
        if name == "netlease", let path = ProcessInfo.processInfo.environment["NETLEASE_BINARY"] { return path }
        var candidates: [URL] = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let argv0 = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: argv0).deletingLastPathComponent())
        }
        for directory in candidates {
            let path = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw NetleaseError(.unavailable, "\(name) executable not found next to the test bundle; set NETLEASE_BINARY")
    }
}
