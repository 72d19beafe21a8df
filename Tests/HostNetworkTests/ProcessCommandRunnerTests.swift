import NetleaseLab
import NetleaseTesting
import XCTest

@testable import HostNetwork

final class ProcessCommandRunnerTests: XCTestCase {
    private let runner = ProcessCommandRunner()

    func testCapturesStdout() async throws {
        let result = try await runner.run(["echo", "hello", "world"])
        XCTAssertEqual(result.stdout, "hello world\n")
        XCTAssertEqual(result.status, 0)
    }

    func testNonZeroExitThrowsWithCommandStatusAndStderr() async throws {
        do {
            _ = try await runner.run(["sh", "-c", "echo partial; echo 'it broke' >&2; exit 3"])
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .commandFailed)
            XCTAssertEqual(error.command, ["sh", "-c", "echo partial; echo 'it broke' >&2; exit 3"])
            XCTAssertEqual(error.status, 3)
            XCTAssertEqual(error.stderr, "it broke")
            XCTAssertEqual(
                error.description,
                #"command-failed: `sh -c 'echo partial; echo '\''it broke'\'' >&2; exit 3'` "#
                    + "exited with status 3: it broke"
            )
        }
    }

    func testMissingToolIsNamed() async throws {
        do {
            _ = try await runner.run(["netlease-no-such-tool", "x"])
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .toolNotFound)
            XCTAssertTrue(error.message.contains("netlease-no-such-tool"), error.message)
        }
    }

    func testToolsInSbinAreFoundWithoutThemOnPath() throws {
        let narrow = ProcessCommandRunner(path: "/nonexistent")
        XCTAssertTrue(narrow.searchPath.contains("/usr/sbin"))
        XCTAssertEqual(try narrow.resolve("sh").hasSuffix("/sh"), true)
    }

    func testLargeOutputOnBothPipesDoesNotDeadlock() async throws {
        let script = "head -c 300000 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2"
        let result = try await runner.run(["sh", "-c", script])
        XCTAssertEqual(result.stdout.utf8.count, 300_000)
        XCTAssertEqual(result.stderr.utf8.count, 300_000)
    }

    func testHungCommandIsTerminatedAfterTimeout() async throws {
        let impatient = ProcessCommandRunner(timeout: .milliseconds(200))
        do {
            _ = try await impatient.run(["sleep", "30"])
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .commandFailed)
            XCTAssertEqual(error.status, 128 + 9)
        }
    }
}

final class RecordingCommandRunnerTests: XCTestCase {
    func testRecordsInOrderAndDefaultsToSuccess() async throws {
        let runner = RecordingCommandRunner()
        let first = try await runner.run(["a", "1"])
        _ = try await runner.run(["b"])
        XCTAssertEqual(first, .success)
        XCTAssertEqual(runner.commands, [["a", "1"], ["b"]])
    }

    func testExactBeatsPrefixLongerPrefixBeatsShorterLaterBeatsEarlier() async throws {
        let runner = RecordingCommandRunner()
        runner.on(prefix: ["ip"], reply: .output("short"))
        runner.on(prefix: ["ip", "link"], reply: .output("long"))
        runner.on(["ip", "link", "show"], reply: .output("exact"))
        runner.on(["ip", "link", "show"], reply: .output("exact, later"))
        let exact = try await runner.run(["ip", "link", "show"])
        let long = try await runner.run(["ip", "link", "del", "x"])
        let short = try await runner.run(["ip", "addr"])
        XCTAssertEqual(exact.stdout, "exact, later")
        XCTAssertEqual(long.stdout, "long")
        XCTAssertEqual(short.stdout, "short")
    }

    func testLimitedRepliesAreUsedUp() async throws {
        let runner = RecordingCommandRunner()
        runner.on(["x"], reply: .output("always"))
        runner.on(["x"], reply: .failure(status: 4, stderr: "once"), times: 1)
        do {
            _ = try await runner.run(["x"])
            XCTFail("expected the scripted failure")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.status, 4)
            XCTAssertEqual(error.stderr, "once")
        }
        let second = try await runner.run(["x"])
        XCTAssertEqual(second.stdout, "always")
    }

    func testNetnsRunnerPrefixesAndReportsTheInnerCommand() async throws {
        let base = RecordingCommandRunner()
        base.on(
            prefix: ["ip", "netns", "exec", "h1", "env", "OVS_RUNDIR=/tmp/x", "false"],
            reply: .failure(status: 1, stderr: "nope")
        )
        let runner = NetnsCommandRunner(namespace: "h1", environment: ["OVS_RUNDIR": "/tmp/x"], base: base)
        _ = try await runner.run(["ip", "link"])
        XCTAssertEqual(base.commands, [["ip", "netns", "exec", "h1", "env", "OVS_RUNDIR=/tmp/x", "ip", "link"]])
        do {
            _ = try await runner.run(["false"])
            XCTFail("expected an error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.command, ["false"])
            XCTAssertTrue(error.message.contains("in netns h1"), error.message)
        }
    }
}

final class RecordingHostNetworkTests: XCTestCase {
    func testRecordsCallsAndScriptedAnswers() async throws {
        let fake = RecordingHostNetwork()
        let config = VXLANMeshTests.config()
        _ = try await fake.ensureNetwork(config)
        fake.setVerifyFailures([VerifyFailure(check: .bridgeUp, detail: "down")])
        let failures = try await fake.verify(config)
        XCTAssertEqual(failures.map(\.check), [.bridgeUp])
        fake.setError(HostNetworkError(.conflict, "scripted"))
        do {
            try await fake.teardown(network: "blue")
            XCTFail("expected the scripted error")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .conflict)
        }
        XCTAssertEqual(fake.calls, [.ensureNetwork(config), .verify(config), .teardown(network: "blue")])
    }
}
