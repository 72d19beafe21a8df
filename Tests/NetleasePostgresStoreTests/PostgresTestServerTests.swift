import Foundation
import HostNetwork
import XCTest

@testable import NetleaseTesting

#if canImport(Glibc)
import Glibc
#endif

/// The fixture itself: a server left running by a test process that died (no atexit) is stopped and removed by
/// the next start, so it never piles up or gets in the way.
final class PostgresTestServerTests: XCTestCase {
    func testAServerLeftByADeadTestProcessIsStoppedAndRemovedByTheNextStart() throws {
        _ = try PostgresTestDatabase.server()  // skips without PostgreSQL
        let stale = try PostgresTestServer.start()
        var stopped = false
        defer { if !stopped { stale.stop() } }
        let postmaster = try XCTUnwrap(
            pid_t(
                String(contentsOfFile: stale.dataDirectory + "/postmaster.pid", encoding: .utf8)
                    .split(separator: "\n").first ?? ""
            )
        )
        XCTAssertEqual(kill(postmaster, 0), 0, "the server runs")

        // Its owner is gone: a process that already exited.
        let gone = try ChildProcess(executable: "/bin/true", arguments: [])
        gone.wait()
        try Data("\(gone.pid)\n".utf8).write(to: URL(fileURLWithPath: stale.directory + "/owner.pid"))

        let fresh = try PostgresTestServer.start()
        defer { fresh.stop() }
        stopped = !FileManager.default.fileExists(atPath: stale.directory)
        XCTAssertTrue(stopped, "the stale server's directory is still there")
        XCTAssertTrue(Self.ends(postmaster, within: .seconds(10)), "the stale server still runs")
        // The shared server of this process (owner alive) was left alone.
        XCTAssertEqual(try PostgresTestServer.shared().sql("SELECT 1"), "1")
        XCTAssertEqual(try fresh.sql("SELECT 2"), "2")
    }

    /// Whether `pid` stops running within `limit`. A process that exited but was not reaped (a daemon's zombie under
    /// a container's init that does not reap) counts as ended.
    static func ends(_ pid: pid_t, within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            guard kill(pid, 0) == 0,
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return true }
            let state = stat[stat.index(after: close)...].dropFirst().first
            if state == "Z" || state == "X" { return true }
            usleep(50_000)
        }
        return false
    }
}
