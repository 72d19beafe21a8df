import Foundation
import XCTest

/// What the coordinator executable writes to stderr, read back as an operator's log pipeline would.
final class DaemonLogTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("netlease-log-\(UUID().uuidString)")
            .path
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a coordinator at trace level in `format` while clients authenticate (rightly, wrongly, with the
    /// reader secret, and with the secret inside a malformed line), stops it, and returns its stderr lines and
    /// the two secrets.
    private func logOfAuthenticatingClients(
        format: String
    ) async throws
        -> (lines: [String], secrets: [String])
    {
        let daemon = try ChildDaemon(
            [
                "coordinator", "--listen", "127.0.0.1:0", "--data", directory, "--log-level", "trace",
                "--log-format", format,
            ],
            stderrFile: directory + ".stderr"
        )
        let port = try await daemon.listeningPort()
        let secrets = try ["cluster-secret", "reader-secret"].map {
            try String(contentsOfFile: directory + "/" + $0, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let replies = try RawLineClient.exchange(
            port: port,
            [
                "AUTH secret=wrong", "AUTH secret=\(secrets[1])", "AUTH secret=\(secrets[0]) extra=1",
                "AUTH secret=\(secrets[0])", "NETWORK-CREATE name=prod subnet=10.1.0.0/24", "STATS",
            ]
        )
        XCTAssertEqual(replies.count, 7, "\(replies)")
        XCTAssertEqual(replies.dropFirst().first, "ERR auth-failed wrong secret")
        XCTAssertTrue(replies[5].hasPrefix("OK name=prod"), replies[5])
        // The admin CLI authenticates too, through the client library.
        let cli = try await BuiltExecutable.run(
            "netlease",
            ["hosts", "--coordinator", "127.0.0.1:\(port)", "--secret-file", directory + "/cluster-secret"]
        )
        XCTAssertEqual(cli.status, 0, cli.stderr)
        let status = await daemon.terminate()
        XCTAssertEqual(status, 0)
        let lines = daemon.stderrText.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            .map(String.init)
        XCTAssertGreaterThan(lines.count, 5, daemon.stderrText)
        return (lines, secrets)
    }

    private func assertNoSecret(
        in lines: [String],
        _ secrets: [String],
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        for secret in secrets {
            // As text, and as the decimal byte list a default struct description would print.
            let forms = [secret, Array(secret.utf8).map(String.init).joined(separator: ", ")]
            for form in forms {
                let leaking = lines.filter { $0.contains(form) }.count
                XCTAssertEqual(leaking, 0, "log lines carry a secret", file: file, line: line)
            }
        }
    }

    func testJSONLogsCarryNoSecretAndEveryLineIsAnObject() async throws {
        let (lines, secrets) = try await logOfAuthenticatingClients(format: "json")
        assertNoSecret(in: lines, secrets)
        var messages: [String] = []
        for line in lines {
            let object = try XCTUnwrap(
                try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                "not JSON: \(line)"
            )
            XCTAssertNotNil(object["time"] as? String, line)
            XCTAssertNotNil(object["level"] as? String, line)
            messages.append(try XCTUnwrap(object["message"] as? String, line))
            if object["message"] as? String == "network created" {
                XCTAssertEqual(object["network"] as? String, "prod", line)
                XCTAssertEqual(object["subnet"] as? String, "10.1.0.0/24", line)
            }
        }
        XCTAssertTrue(messages.contains("authentication failed"), "\(messages)")
        XCTAssertTrue(messages.contains("network created"), "\(messages)")
    }

    func testJournalLogsCarryNoSecretAndEveryLineHasAPriority() async throws {
        let (lines, secrets) = try await logOfAuthenticatingClients(format: "journal")
        assertNoSecret(in: lines, secrets)
        for line in lines {
            XCTAssertNotNil(line.range(of: #"^<[2-7]>netlease\."#, options: .regularExpression), line)
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("<4>netlease.coordinator: authentication failed") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("<6>netlease.coordinator: network created network=prod") })
    }

    func testTextLogsCarryNoSecret() async throws {
        let (lines, secrets) = try await logOfAuthenticatingClients(format: "text")
        assertNoSecret(in: lines, secrets)
        XCTAssertTrue(lines.contains { $0.contains(" info netlease.coordinator: network created network=prod ") })
    }

    func testAFailedStartIsReportedInTheLogFormat() async throws {
        // A data directory that cannot be created: its parent is a file.
        XCTAssertTrue(FileManager.default.createFile(atPath: directory, contents: Data()))
        for (format, check) in [
            ("journal", { (line: String) in line.hasPrefix("<3>error: ") }),
            ("json", { (line: String) in line.hasPrefix(#"{"error":{"code":"#) }),
            ("text", { (line: String) in line.hasPrefix("error: ") }),
        ] {
            let run = try await BuiltExecutable.run(
                "netlease",
                [
                    "coordinator", "--listen", "127.0.0.1:0", "--data", directory + "/data",
                    "--log-format", format,
                ]
            )
            XCTAssertEqual(run.status, 1)
            XCTAssertTrue(check(run.stderr), "\(format): \(run.stderr)")
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
