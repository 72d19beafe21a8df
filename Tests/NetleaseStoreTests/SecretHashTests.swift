import XCTest

@testable import NetleaseStore

final class SecretHashTests: XCTestCase {
    func testMatchesOnlyTheSecretAndSurvivesItsStoredForm() throws {
        let hash = SecretHash(hashing: "0123abcd")
        XCTAssertTrue(hash.matches("0123abcd"))
        for wrong in ["", "0123abc", "0123abcd ", "0123abce", String(repeating: "x", count: 4096)] {
            XCTAssertFalse(hash.matches(wrong), wrong)
        }
        let stored = hash.stored
        XCTAssertTrue(stored.hasPrefix("sha256:"))
        XCTAssertFalse(stored.contains("0123abcd"))
        let parsed = try XCTUnwrap(SecretHash(stored: stored))
        XCTAssertEqual(parsed, hash)
        XCTAssertTrue(parsed.matches("0123abcd"))
        XCTAssertNotEqual(SecretHash(hashing: "0123abcd").stored, stored, "every hash has its own salt")
    }

    func testRefusesUnreadableStoredForms() {
        for text in [
            "", "sha256", "md5:00:00", "sha256::" + String(repeating: "0", count: 64), "sha256:zz:00",
            "sha256:0011:0011", "sha256:001:" + String(repeating: "0", count: 64),
        ] {
            XCTAssertNil(SecretHash(stored: text), text)
        }
    }
}
