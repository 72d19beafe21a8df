import Foundation
import HostNetwork
import NetleaseTesting
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ChildProcessTests: XCTestCase {
    private func sh(_ script: String, timeout: Duration? = nil) throws -> ChildProcess.Output {
        try ChildProcess.run(executable: "/bin/sh", arguments: ["-c", script], timeout: timeout)
    }

    func testSeparatesStdoutStderrAndExitCode() throws {
        let output = try sh("printf out; printf err >&2; exit 3")
        XCTAssertEqual(String(decoding: output.stdout, as: UTF8.self), "out")
        XCTAssertEqual(String(decoding: output.stderr, as: UTF8.self), "err")
        XCTAssertEqual(output.termination, .exited(3))
        XCTAssertFalse(output.timedOut)
    }

    func testDeathBySignalIsReportedAsTheShellWould() throws {
        let output = try sh("kill -TERM $$")
        XCTAssertEqual(output.termination, .signalled(SIGTERM))
        XCTAssertEqual(output.termination.shellStatus, 128 + SIGTERM)
    }

    /// The child gets stdin, stdout and stderr only: not a descriptor the parent opened without close-on-exec.
    func testChildInheritsNoOtherDescriptor() throws {
        let leaky = open("/dev/null", O_RDONLY)
        XCTAssertGreaterThan(leaky, 2)
        defer { close(leaky) }
        let output = try ChildProcess.run(executable: "/bin/ls", arguments: ["/proc/self/fd"])
        let listed = Set(String(decoding: output.stdout, as: UTF8.self).split(separator: "\n").map(String.init))
        // ls itself holds one more descriptor: the directory it lists.
        XCTAssertTrue(listed.isSuperset(of: ["0", "1", "2"]), "\(listed)")
        XCTAssertLessThanOrEqual(listed.count, 4, "descriptors leaked into the child: \(listed)")
        XCTAssertFalse(listed.contains("\(leaky)"), "the parent's descriptor \(leaky) leaked into the child")
    }

    /// Spawned from a Swift task (whose thread blocks most signals) with SIGPIPE ignored in this process, the
    /// child still starts with nothing blocked and nothing ignored, so SIGTERM stops it.
    func testChildStartsWithCleanSignalState() async throws {
        let previous = Glibc.signal(SIGPIPE, SIG_IGN)
        defer { Glibc.signal(SIGPIPE, previous) }
        let output = try await Task.detached {
            try ChildProcess.run(executable: "/bin/grep", arguments: ["-E", "^Sig(Blk|Ign):", "/proc/self/status"])
        }.value
        let lines = String(decoding: output.stdout, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, 2, "\(lines)")
        for line in lines {
            // Signals 1–31 only: glibc keeps its two internal real-time signals (32, 33) to itself.
            let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16)
            XCTAssertEqual(mask.map { $0 & 0x7fff_ffff }, 0, "child signal state: \(line)")
        }
    }

    func testLargeOutputOnBothStreamsIsDrainedTogether() throws {
        let output = try sh("head -c 1000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero | tr '\\0' b >&2")
        XCTAssertEqual(output.stdout.count, 1_000_000)
        XCTAssertEqual(output.stderr.count, 1_000_000)
        XCTAssertEqual(output.termination, .exited(0))
    }

    /// A timeout kills the child's whole process group: a grandchild holding the output pipe open cannot keep
    /// the call waiting, and does not outlive it.
    func testTimeoutKillsTheProcessGroup() throws {
        let output = try sh("sleep 30 & echo $!; wait", timeout: .milliseconds(1_500))
        XCTAssertTrue(output.timedOut)
        XCTAssertEqual(output.termination, .signalled(SIGKILL))
        let printed = String(decoding: output.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let grandchild = Int32(printed) else { return XCTFail("the shell printed no pid: '\(printed)'") }
        // Its pipe reached end of file, so the grandchild holding it is exiting: it closes its descriptors before it
        // becomes a zombie, so give it until then (no event to await for another parent's child; bounded).
        func state() -> String? {
            let stat = try? String(contentsOfFile: "/proc/\(grandchild)/stat", encoding: .utf8)
            return stat?.split(separator: ")").last?.split(separator: " ").first.map(String.init)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while let current = state(), current != "Z", ContinuousClock.now < deadline { usleep(10_000) }
        let last = state()
        XCTAssertTrue(last == nil || last == "Z", "the grandchild \(grandchild) outlived the timeout: state \(last!)")
    }

    /// A child that closes its streams and keeps running is still killed at the deadline.
    func testTimeoutHoldsAfterTheChildClosesItsStreams() throws {
        let output = try sh("exec >/dev/null 2>&1; sleep 30", timeout: .milliseconds(500))
        XCTAssertTrue(output.timedOut)
        XCTAssertEqual(output.termination, .signalled(SIGKILL))
    }

    /// With this process's stdin closed, the descriptors opened for a child must not take its number: the child
    /// still gets /dev/null as stdin, and the parent's slot stays closed.
    func testClosedStandardStreamInTheParentIsNotReused() throws {
        let saved = dup(0)
        XCTAssertGreaterThan(saved, 2)
        close(0)
        defer {
            dup2(saved, 0)
            close(saved)
        }
        let output = try ChildProcess.run(executable: "/bin/cat", arguments: [])
        let stillClosed = fcntl(0, F_GETFD) == -1
        XCTAssertEqual(output.termination, .exited(0), String(decoding: output.stderr, as: UTF8.self))
        XCTAssertTrue(stillClosed, "a descriptor opened for the child was left in the parent's stdin slot")
    }

    func testMissingExecutableIsAClearError() {
        XCTAssertThrowsError(try ChildProcess.run(executable: "/nonexistent/tool", arguments: [])) { error in
            let error = error as? HostNetworkError
            XCTAssertEqual(error?.code, .toolNotFound)
            XCTAssertTrue(error?.message.contains("/nonexistent/tool") ?? false, "\(String(describing: error))")
        }
    }

    func testEnvironmentIsPassedWhenGiven() throws {
        let output = try ChildProcess.run(
            executable: "/usr/bin/env",
            arguments: [],
            environment: ["NETLEASE_PROBE": "yes"]
        )
        XCTAssertEqual(String(decoding: output.stdout, as: UTF8.self), "NETLEASE_PROBE=yes\n")
    }

    func testStopSendsTermThenReportsHowItEnded() throws {
        let child = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        XCTAssertTrue(child.isRunning)
        XCTAssertEqual(child.stop(grace: .seconds(10)), .signalled(SIGTERM))
        XCTAssertFalse(child.isRunning)
        // Reaped once; asking again neither blocks nor signals a recycled pid.
        XCTAssertEqual(child.wait(), .signalled(SIGTERM))
        child.signal(SIGKILL)
    }

    func testOutputToAFile() throws {
        let path = NSTemporaryDirectory() + "netlease-child-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        for word in ["one", "two"] {
            let child = try ChildProcess(
                executable: "/bin/echo",
                arguments: [word],
                stdout: .file(path, append: true)
            )
            XCTAssertEqual(child.wait(), .exited(0))
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "one\ntwo\n")
    }

    /// Many children at once from many threads, in a process holding over a thousand descriptors: every run gets
    /// its own output and status, and no descriptor is left behind.
    func testConcurrentRunsWithManyOpenDescriptors() async throws {
        // Over a thousand where the limit allows, leaving room for the runs' own pipes.
        let change = OpenFileLimitChange(raisingTo: 4_096)
        addTeardownBlock { XCTAssertTrue(change.restore(), "the descriptor limit could not be restored") }
        let count = max(0, min(1_200, change.current - 1_000))
        let held = (0..<count).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
        defer { for fd in held where fd >= 0 { close(fd) } }
        XCTAssertFalse(held.contains(-1), "could not open \(count) descriptors")
        let before = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        let runner = ProcessCommandRunner()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let result = try await runner.run(["sh", "-c", "echo \(index); echo e\(index) >&2"])
                    XCTAssertEqual(result.stdout, "\(index)\n")
                    XCTAssertEqual(result.stderr, "e\(index)\n")
                }
            }
            try await group.waitForAll()
        }
        let after = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        // At most as many as before: other tests' connections may close meanwhile, but none of these runs may leak.
        XCTAssertLessThanOrEqual(after, before, "descriptors leaked by 200 runs")
    }
}
