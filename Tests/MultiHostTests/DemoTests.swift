import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import NetleaseTesting
import XCTest

/// `netlease demo` on a fresh machine: with nothing on PATH but iproute2's `ip` and `bridge` and util-linux's
/// `nsenter` (no `ping`), the whole demo runs and every container reaches every other.
final class DemoTests: XCTestCase {
    func testTheDemoNeedsNothingBeyondIproute2() async throws {
        if let problem = await NamespaceLab.capabilityProblem() {
            if LabRequirement.isRequired { return XCTFail("NETLEASE_REQUIRE_NETNS=1 but: \(problem)") }
            throw XCTSkip("the demo cannot run here: \(problem)")
        }
        let binary = try Executables.path()
        let tools = FileManager.default.temporaryDirectory.appendingPathComponent("demo-path-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tools, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tools) }
        for tool in ["ip", "bridge", "nsenter"] {
            let found = try XCTUnwrap(LabPrerequisites.onPath(tool), "\(tool) is not installed")
            try FileManager.default.createSymbolicLink(
                atPath: tools.appendingPathComponent(tool).path,
                withDestinationPath: found
            )
        }
        let environment = ["PATH": tools.path, "HOME": "/root"]
        let output = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result {
                        try ChildProcess.run(
                            executable: binary,
                            arguments: ["demo", "--hosts", "2", "--containers", "2", "--json"],
                            environment: environment,
                            timeout: .seconds(180)
                        )
                    }
                )
            }
        }
        let stderr = String(decoding: output.stderr, as: UTF8.self)
        XCTAssertEqual(output.termination, .exited(0), stderr)
        let report = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(output.stdout)) as? [String: Any],
            stderr
        )
        XCTAssertEqual(report["hosts"] as? [String], ["host1", "host2"])
        let containers = try XCTUnwrap(report["containers"] as? [[String: Any]])
        XCTAssertEqual(containers.count, 4)
        XCTAssertEqual(Set(containers.compactMap { $0["address"] as? String }).count, 4, "addresses are unique")
        XCTAssertEqual(report["pings"] as? Int, 12)
        XCTAssertEqual(report["failed_pings"] as? Int, 0)
        XCTAssertTrue(stderr.contains("demo: checked: root, iproute2"), stderr)
        // Agents run with credentials that act only as their host, never with the cluster secret.
        XCTAssertTrue(stderr.contains("host1: namespace and underlay made"), stderr)
        XCTAssertTrue(stderr.contains("credential issued (acts only as host2)"), stderr)
        XCTAssertTrue(stderr.contains("removed every namespace and process of the demo"), stderr)
    }
}
