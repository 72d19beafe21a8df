import Foundation
import NetleaseCore
import XCTest

/// A real agent at trace level, logging JSON while it authenticates, builds its network and attaches a container:
/// every line is one object with its metadata as keys, and none carries a secret (the cluster secret, or the host
/// credential the agent authenticates with).
final class AgentLogTests: LabTestCase {
    func testATraceLevelAgentLogsJSONAndNeverTheSecret() async throws {
        try await cluster.startCoordinator()
        let agent = try await cluster.startAgent(1, extraArguments: ["--log-level", "trace", "--log-format", "json"])
        _ = try await cluster.attachContainer(host: 1, 1)
        XCTAssertEqual(cluster.stopAgent(1), 0)
        let lines = agent.log.split(separator: "\n").map(String.init)
        XCTAssertGreaterThan(lines.count, 10)
        for file in [cluster.secretFile, cluster.credentialFile(host: 1)] {
            let secret = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
            for form in [secret, Array(secret.utf8).map(String.init).joined(separator: ", ")] {
                XCTAssertEqual(lines.filter { $0.contains(form) }.count, 0, "log lines carry the secret of \(file)")
            }
        }
        var ready: [String: Any]?
        for line in lines {
            let object = try XCTUnwrap(
                try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                "not JSON: \(line)"
            )
            if object["message"] as? String == "network ready" { ready = object }
        }
        XCTAssertEqual(ready?["network"] as? String, cluster.network)
        XCTAssertEqual(ready?["level"] as? String, "info")
    }
}
