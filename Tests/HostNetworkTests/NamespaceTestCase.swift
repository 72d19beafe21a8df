import Foundation
import NetleaseLab
import NetleaseTesting
import XCTest

/// Base of the root tests of this target: a fresh `NamespaceLab` per test (uniquely named namespaces), destroyed on
/// every exit path, a failed assertion or a thrown error included.
///
/// Without root or `ip netns` the tests skip, unless NETLEASE_REQUIRE_NETNS=1: then the missing capability is a
/// failure, so CI cannot go green by skipping.
class NamespaceTestCase: XCTestCase {
    var lab: NamespaceLab!

    override func setUp() async throws {
        try await super.setUp()
        if let problem = await NamespaceLab.capabilityProblem() {
            try unavailable("root network tests cannot run: \(problem)", requiredBy: LabRequirement.requiringVariable())
        }
        LabSweeper.report(await LabSweeper.sweepOnce())
        lab = try NamespaceLab()
    }

    override func tearDown() async throws {
        let strays = ThreadNamespaces.strays()
        XCTAssertEqual(strays, [], "threads of the test process left in another network namespace")
        if let lab {
            let created = lab.createdNamespaces
            let processes = lab.startedProcesses
            await lab.destroy()
            for name in created {
                XCTAssertFalse(
                    FileManager.default.fileExists(atPath: "/var/run/netns/" + name),
                    "netns \(name) survived cleanup"
                )
            }
            for process in processes where process.isRunning {
                XCTFail("process \(process.name) (pid \(process.pid)) survived cleanup")
            }
        }
        lab = nil
        try await super.tearDown()
    }

    /// Starts a private Open vSwitch in `namespace` (stopped by the lab's destroy), or skips when it is not installed
    /// (a failure when NETLEASE_REQUIRE_NETNS=1 or NETLEASE_REQUIRE_OVS=1).
    func startOpenVSwitch(in namespace: String) async throws -> LabOpenVSwitch {
        if let reason = LabOpenVSwitch.unavailableReason() {
            try unavailable(reason, requiredBy: LabRequirement.requiringVariable(openVSwitch: true))
        }
        return try await LabOpenVSwitch.start(in: namespace, lab: lab)
    }

    /// Skips, or fails when `variable` (set to 1) requires the capability.
    private func unavailable(
        _ why: String,
        requiredBy variable: String?,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> Never {
        struct Unavailable: Error, CustomStringConvertible {
            var description: String
        }
        if let variable {
            XCTFail("\(variable)=1 but \(why)", file: file, line: line)
            throw Unavailable(description: why)
        }
        throw XCTSkip(why)
    }

    /// Polls `condition` until it holds or `timeout` passes: root tests wait on what the kernel shows, never for a
    /// fixed time.
    func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if try await condition() { return true }
            // A short pause between polls; correctness never depends on its length.
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return try await condition()
    }
}
