import Foundation
import HostNetwork
import NetleaseTesting
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `netlease host credential issue|revoke|list` through the built executable against a real coordinator: the file
/// is owner-only and names its host, an existing file is never overwritten without --force, a bad name or path is a
/// usage error (exit 64) that changes nothing, and the issued file authenticates as its host only.
final class HostCredentialCommandTests: XCTestCase {
    private var scratch: String!
    private var coordinator: CoordinatorProcess?

    override func setUp() async throws {
        scratch =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-credential-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        coordinator = try await CoordinatorProcess.start(binary: try binary(), directory: path("data"))
    }

    override func tearDown() {
        coordinator?.cleanUp()
        coordinator = nil
        try? FileManager.default.removeItem(atPath: scratch)
    }

    private func binary() throws -> String {
        do { return try Executables.path() } catch { try missingCapability("\(error)") }
    }

    private func path(_ name: String) -> String { (scratch as NSString).appendingPathComponent(name) }

    /// Runs the CLI against the coordinator with `secretFile` (default: the cluster secret).
    private func netlease(_ arguments: [String], secretFile: String? = nil) throws -> ExecutableRun {
        let coordinator = try XCTUnwrap(coordinator)
        return try ExecutableRun.run(
            try binary(),
            arguments + ["--coordinator", coordinator.address, "--secret-file", secretFile ?? coordinator.secretFile],
            timeout: .seconds(30)
        )
    }

    func testIssueWritesAnOwnerOnlyFileThatAuthenticatesAsItsHostOnly() throws {
        let file = path("h1.credential")
        let issued = try netlease(["host", "credential", "issue", "h1", "--out", file])
        XCTAssertEqual(issued.status, 0, issued.stderr)
        var info = stat()
        XCTAssertEqual(stat(file, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("netlease-host:h1:") && text.hasSuffix("\n"), text)
        XCTAssertEqual(text.count, "netlease-host:h1:".count + 64 + 1)
        XCTAssertFalse(coordinator!.log.contains(text.dropLast()), "the coordinator logged the credential")

        let hosts = try netlease(["hosts"], secretFile: file)
        XCTAssertEqual(hosts.status, 0, hosts.stderr)
        let refused = try netlease(["network", "create", "n1", "--subnet", "172.30.0.0/24"], secretFile: file)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("error: forbidden:"), refused.stderr)

        let listed = try netlease(["host", "credential", "list", "--json"])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertTrue(listed.stdout.contains("\"host\" : \"h1\""), listed.stdout)
        XCTAssertFalse(listed.stdout.contains("sha256"), "a hash was listed")

        let revoked = try netlease(["host", "credential", "revoke", "h1"])
        XCTAssertEqual(revoked.status, 0, revoked.stderr)
        let after = try netlease(["hosts"], secretFile: file)
        XCTAssertEqual(after.status, 1)
        XCTAssertTrue(after.stderr.contains("auth-failed"), after.stderr)
    }

    /// `host remove` says that it revoked the host's credential (text and JSON), and the file stops working.
    func testHostRemoveRevokesTheCredentialAndSaysSo() throws {
        let file = path("h1.credential")
        XCTAssertEqual(try netlease(["host", "credential", "issue", "h1", "--out", file]).status, 0)
        XCTAssertEqual(try netlease(["host", "credential", "issue", "h2", "--out", path("h2.credential")]).status, 0)
        let removed = try netlease(["host", "remove", "h1"])
        XCTAssertEqual(removed.status, 0, removed.stderr)
        XCTAssertEqual(
            removed.stdout,
            "removed host h1; 0 lease(s) moved to cooldown; its credential revoked, 0 connection(s) closed\n"
        )
        let after = try netlease(["hosts"], secretFile: file)
        XCTAssertEqual(after.status, 1)
        XCTAssertTrue(after.stderr.contains("auth-failed"), after.stderr)

        let json = try netlease(["host", "remove", "h2", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["removed"] as? String, "h2")
        XCTAssertEqual(object["released"] as? Int, 0)
        XCTAssertEqual(object["revoked"] as? Bool, true)
        XCTAssertEqual(object["closed"] as? Int, 0)
        let gone = try netlease(["host", "remove", "h2"])
        XCTAssertEqual(gone.status, 1)
        XCTAssertTrue(gone.stderr.hasPrefix("error: not-found:"), gone.stderr)
    }

    func testAnExistingFileIsReplacedOnlyWithForceAndUsageErrorsChangeNothing() throws {
        let file = path("h1.credential")
        XCTAssertEqual(try netlease(["host", "credential", "issue", "h1", "--out", file]).status, 0)
        let original = try String(contentsOfFile: file, encoding: .utf8)
        for arguments in [
            ["host", "credential", "issue", "h1", "--out", file],
            ["host", "credential", "issue", "-bad", "--out", path("bad.credential")],
            ["host", "credential", "issue", "h2", "--out", path("missing/h2.credential")],
        ] {
            let refused = try netlease(arguments)
            XCTAssertEqual(refused.status, 64, "\(arguments): \(refused.stderr)")
        }
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), original, "the file was overwritten")
        XCTAssertEqual(try netlease(["hosts"], secretFile: file).status, 0, "the credential was replaced")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad.credential")))
        let listed = try netlease(["host", "credential", "list"])
        XCTAssertFalse(listed.stdout.contains("h2"), "a refused issue stored a credential: \(listed.stdout)")

        let forced = try netlease(["host", "credential", "issue", "h1", "--out", file, "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertNotEqual(try String(contentsOfFile: file, encoding: .utf8), original)
        XCTAssertEqual(try netlease(["hosts"], secretFile: file).status, 0, "the new credential does not work")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch).filter { $0.contains(".new-") }
        XCTAssertEqual(leftovers, [], "temporary files were left behind")
    }
}
