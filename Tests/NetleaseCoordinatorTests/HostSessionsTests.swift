import Synchronization
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

/// The guard against a JOIN racing a host removal: a JOIN by a host credential runs only while that credential
/// stands, and a removal waits for the JOINs that started before it revoked.
final class HostSessionJoinTests: XCTestCase {
    func testAJoinByARevokedCredentialIsRefusedBeforeItRuns() async {
        let sessions = HostSessions()
        let seen = sessions.revocations(of: "h1")
        sessions.revoke("h1")
        let ran = Mutex(false)
        let joined: Bool? = await sessions.joining("h1", revocations: seen) {
            ran.withLock { $0 = true }
            return true
        }
        XCTAssertNil(joined, "a JOIN with a revoked credential was admitted")
        XCTAssertFalse(ran.withLock { $0 }, "a JOIN with a revoked credential reached the store")
        let other: Bool? = await sessions.joining("h2", revocations: sessions.revocations(of: "h2")) { true }
        XCTAssertEqual(other, true, "another host's JOIN was refused")
        await sessions.joinsFinished("h1")  // none running: returns at once
    }
}

/// A certificate's names bind what AUTH grants byte for byte, not by Unicode canonical equivalence.
final class CertificateNameTests: XCTestCase {
    func testACanonicallyEquivalentNameDoesNotMatch() {
        XCTAssertTrue(RequestHandler.names(["web", "Kube"], contain: "Kube"))
        XCTAssertEqual("\u{212A}ube", "Kube", "Swift compares these as equal")
        XCTAssertFalse(RequestHandler.names(["\u{212A}ube"], contain: "Kube"), "the Kelvin sign passed for K")
        XCTAssertFalse(RequestHandler.names(["Kube"], contain: "\u{212A}ube"))
    }
}
