import Foundation
import HostNetwork
import XCTest

/// Runs a command synchronously for test setup and cleanup (teardown blocks are synchronous).
enum TestShell {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    @discardableResult
    static func run(_ argv: [String], environment: [String: String]? = nil) throws -> String {
        var variables = ProcessInfo.processInfo.environment.merging(environment ?? [:]) { $1 }
        variables["PATH"] = (variables["PATH"].map { $0 + ":" } ?? "") + "/usr/sbin:/usr/bin:/sbin:/bin"
        // Files, not pipes: a daemon started with --detach inherits them, and a pipe would stay open (and a read
        // of it blocked) for as long as the daemon runs.
        let base = NSTemporaryDirectory() + "nlt-\(UUID().uuidString)"
        let outFile = base + ".out"
        let errFile = base + ".err"
        defer { for path in [outFile, errFile] { try? FileManager.default.removeItem(atPath: path) } }
        let child = try ChildProcess(
            executable: "/usr/bin/env", arguments: argv, environment: variables,
            stdout: .file(outFile, append: false), stderr: .file(errFile, append: false))
        guard let status = child.wait(until: .now + .seconds(120))?.shellStatus else {
            child.signalGroup(SIGKILL)
            child.wait()
            throw Failure(description: "\(argv.joined(separator: " ")) did not finish within 120 s and was killed")
        }
        let data = FileManager.default.contents(atPath: outFile) ?? Data()
        let stdout = String(decoding: data, as: UTF8.self)
        guard status == 0 else {
            let stderr = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
            throw Failure(description: "\(argv.joined(separator: " ")) exited \(status): \(stderr)")
        }
        return stdout
    }

    static func succeeds(_ argv: [String]) -> Bool { (try? run(argv)) != nil }

    static func json(_ argv: [String]) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(try run(argv).utf8))
    }

    /// Polls `condition` until it holds or `timeout` passes; the only way root tests wait.
    static func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if condition() { return true }
            // A short pause between polls; correctness never depends on its length.
            usleep(20_000)
        } while ContinuousClock.now < deadline
        return condition()
    }
}

/// Uniquely named network namespaces for one root test, removed on every exit path (registered as a teardown
/// block before anything is created).
///
/// Root tests skip when the process is not root or `ip netns add` fails, unless NETLEASE_REQUIRE_NETNS=1: then a
/// missing capability is a test failure, so CI cannot go green by skipping.
// @unchecked Sendable: used by one test at a time; the teardown block runs after the test body finished.
final class NetnsTestbed: @unchecked Sendable {
    static let requireVariable = "NETLEASE_REQUIRE_NETNS"

    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    let suffix: String
    private(set) var namespaces: [String] = []
    private var cleanups: [(String, () -> Void)] = []

    private init() {
        suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    static var isRequired: Bool { ProcessInfo.processInfo.environment[requireVariable] == "1" }

    /// A testbed for `testCase`, or a skip (a failure when required) when namespaces cannot be made here.
    static func make(for testCase: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws
        -> NetnsTestbed
    {
        guard geteuid() == 0 else { try unavailable("tests need root (euid \(geteuid()))", file: file, line: line) }
        let bed = NetnsTestbed()
        testCase.addTeardownBlock { bed.cleanUp() }
        do {
            _ = try bed.namespace("probe")
        } catch {
            try unavailable("`ip netns add` failed: \(error)", file: file, line: line)
        }
        return bed
    }

    static func unavailable(_ why: String, file: StaticString = #filePath, line: UInt = #line) throws -> Never {
        if isRequired {
            XCTFail("\(requireVariable)=1 but \(why)", file: file, line: line)
            throw Unavailable(description: why)
        }
        throw XCTSkip("root network test skipped: \(why)")
    }

    /// Creates namespace `nlt-<random>-<role>` with loopback up.
    func namespace(_ role: String) throws -> String {
        let name = "nlt-\(suffix)-\(role)"
        try TestShell.run(["ip", "netns", "add", name])
        onCleanup("delete netns \(name)") { _ = try? TestShell.run(["ip", "netns", "del", name]) }
        namespaces.append(name)
        try TestShell.run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name
    }

    /// Registers a cleanup; cleanups run newest first.
    func onCleanup(_ what: String, _ action: @escaping () -> Void) {
        cleanups.append((what, action))
    }

    func cleanUp() {
        while let (_, action) = cleanups.popLast() { action() }
        for name in namespaces {
            XCTAssertFalse(
                FileManager.default.fileExists(atPath: "/var/run/netns/" + name), "netns \(name) survived cleanup")
        }
        namespaces.removeAll()
    }

    /// Joins two namespaces with a veth pair and gives each end an address (the "underlay").
    func wire(_ a: String, _ aAddress: String, _ b: String, _ bAddress: String, names: (String, String) = ("u0", "u0"))
        throws
    {
        try TestShell.run(["ip", "-n", a, "link", "add", names.0, "type", "veth", "peer", "name", names.1,
                           "netns", "/var/run/netns/" + b])
        try TestShell.run(["ip", "-n", a, "addr", "add", aAddress, "dev", names.0])
        try TestShell.run(["ip", "-n", b, "addr", "add", bAddress, "dev", names.1])
        try TestShell.run(["ip", "-n", a, "link", "set", names.0, "up"])
        try TestShell.run(["ip", "-n", b, "link", "set", names.1, "up"])
    }

    /// `ip -d -j link show` inside `namespace`, by name.
    func links(_ namespace: String) throws -> [String: [String: Any]] {
        let array = try TestShell.json(["ip", "-n", namespace, "-d", "-j", "link", "show"]) as? [[String: Any]] ?? []
        var result: [String: [String: Any]] = [:]
        for link in array { if let name = link["ifname"] as? String { result[name] = link } }
        return result
    }
}
