import Foundation
import HostNetwork
import NetleaseCore
import NetleaseTesting
import XCTest

/// The coordinator's unit runs it as the unprivileged user `netlease` without capabilities, and admins run the CLI as
/// themselves: no socket of either may need a privilege. A socket option once set at the socket level instead of
/// TCP's asked for SO_DEBUG (same number as TCP_NODELAY), which needs CAP_NET_ADMIN: a coordinator started by its
/// unit closed every connection before the greeting, and the CLI of a non-root admin could not connect at all.
final class UnprivilegedUserTests: XCTestCase {
    static let user = "nobody"

    func testCoordinatorAndCLIWorkAsAnUnprivilegedUser() async throws {
        guard geteuid() == 0 else {
            try missingCapability("not root: the test runs the coordinator and the CLI as user \(Self.user)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser"), let account = getpwnam(Self.user)
        else {
            try missingCapability("runuser (util-linux) or the user \(Self.user) is missing")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("netlease-unprivileged-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.setAttributes(
            [.ownerAccountID: Int(account.pointee.pw_uid), .groupOwnerAccountID: Int(account.pointee.pw_gid)],
            ofItemAtPath: directory.path
        )
        // The built executable must be reachable for that user (a build directory under a private home is not).
        let executable = try BuiltExecutable.path()
        guard access(executable, X_OK) == 0 else { return XCTFail("\(executable) is not executable") }

        let data = directory.appendingPathComponent("data").path
        let daemon = try ChildDaemon(
            ["coordinator", "--listen", "127.0.0.1:0", "--data", data],
            stderrFile: directory.appendingPathComponent("coordinator.err").path,
            user: Self.user
        )
        do {
            let port = try await daemon.listeningPort()
            let secret = "\(data)/cluster-secret"
            let options = ["--coordinator", "127.0.0.1:\(port)", "--secret-file", secret]

            // A root admin reaches it.
            let create = try await BuiltExecutable.run(
                "netlease",
                ["network", "create", "prod", "--subnet", "172.30.0.0/16"] + options
            )
            XCTAssertEqual(create.status, 0, create.stderr)

            // So does the CLI run by the unprivileged user who owns the secret.
            let listed = try ChildProcess.run(
                executable: "/usr/sbin/runuser",
                arguments: ["-u", Self.user, "--", executable, "network", "list", "--json"] + options,
                environment: BuiltExecutable.cleanEnvironment(),
                timeout: .seconds(60)
            )
            XCTAssertEqual(listed.termination.shellStatus, 0, String(decoding: listed.stderr, as: UTF8.self))
            XCTAssertTrue(String(decoding: listed.stdout, as: UTF8.self).contains("\"prod\""))
        } catch {
            _ = await daemon.terminate()
            throw error
        }
        // runuser passes SIGTERM on and ends by it (143), so its status says nothing about the coordinator's stop.
        _ = await daemon.terminate()
    }
}
