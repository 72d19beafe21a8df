import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The Docker plugin socket is root-only whatever the umask: Docker is its one client, and a local user who could
/// connect could release a running container's address (ReleaseAddress names the address alone).
final class DockerPluginSocketTests: AgentTestCase {
    func testThePluginSocketIsRootOnlyUnderAnOpenUmask() async throws {
        let previous = umask(0)
        defer { umask(previous) }
        let harness = try AgentHarness(coordinator: coordinator, dockerPlugin: true)
        harnesses.append(harness)
        harness.start()
        _ = try await harness.waitUntilReady()
        let path = harness.directory.appendingPathComponent("docker.sock").path
        // The plugin listens from the start, before the local API is ready; its mode is set as it listens.
        let mode = try await withDeadline("the plugin socket's mode") { () -> mode_t in
            while true {
                var info = stat()
                if stat(path, &info) == 0, info.st_mode & 0o777 == 0o600 { return info.st_mode & 0o777 }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        XCTAssertEqual(mode, 0o600)
    }
}
