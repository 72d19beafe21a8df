import XCTest

@testable import NetleaseCoordinator

/// The guard against an AUTH racing a revocation: AUTH reads a host's revocation count before it reads the stored
/// hash, and is recorded only if no revocation (or replacement) of that host came in between.
final class HostSessionsTests: XCTestCase {
    func testAnAuthenticationThatARevocationOvertookIsRefused() {
        let sessions = HostSessions()
        let seen = sessions.revocations(of: "h1")
        sessions.revoke("h1")
        XCTAssertFalse(sessions.register(nil, host: "h1", revocations: seen), "a revoked credential was recorded")
        XCTAssertTrue(sessions.register(nil, host: "h1", revocations: sessions.revocations(of: "h1")))
    }

    func testRevocationsOfOneHostLeaveOthersAlone() {
        let sessions = HostSessions()
        let seen = sessions.revocations(of: "h2")
        XCTAssertEqual(sessions.revoke("h1"), 0)
        XCTAssertTrue(sessions.register(nil, host: "h2", revocations: seen))
    }
}
