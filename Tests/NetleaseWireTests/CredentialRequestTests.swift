import NetleaseCore
import XCTest

@testable import NetleaseWire

/// HOST-CREDENTIAL-SET carries only a hash in the stores' form; anything else is a bad request naming the field,
/// so a secret pasted by mistake is never stored as if it were its hash.
final class CredentialRequestTests: XCTestCase {
    let digest = String(repeating: "0f", count: 32)

    func testAHashInTheStoredFormIsAccepted() throws {
        for hash in ["sha256:00:\(digest)", "sha256:\(String(repeating: "a1", count: 64)):\(digest)"] {
            XCTAssertEqual(
                try Request(line: Substring("HOST-CREDENTIAL-SET host=h1 hash=\(hash)")),
                .hostCredentialSet(host: "h1", hash: hash)
            )
        }
    }

    func testAnythingButAHashIsRefusedNamingTheField() {
        let secret = "netlease-host:h1:" + digest
        for hash in [
            "", secret, digest, "sha256::\(digest)", "sha256:0:\(digest)", "sha256:00:\(digest)0",
            "sha256:00:\(digest.uppercased())", "md5:00:\(digest)", "sha256:zz:\(digest)",
            "sha256:\(String(repeating: "a1", count: 65)):\(digest)", "sha256:00:\(digest):00",
        ] {
            XCTAssertThrowsError(try Request(line: Substring("HOST-CREDENTIAL-SET host=h1 hash=\(hash)")), hash) {
                guard let error = $0 as? NetleaseError else { return XCTFail("\($0)") }
                XCTAssertEqual(error.code, .badRequest, hash)
                XCTAssertTrue(error.message.contains("'hash'"), error.message)
            }
        }
    }

    func testTheHostMustBeAName() {
        for line in [
            "HOST-CREDENTIAL-SET hash=sha256:00:\(digest)", "HOST-CREDENTIAL-SET host=-x hash=sha256:00:\(digest)",
            "HOST-CREDENTIAL-REVOKE", "HOST-CREDENTIAL-REVOKE host=a%00b", "HOST-CREDENTIAL-LIST host=h1",
        ] {
            XCTAssertThrowsError(try Request(line: Substring(line)), line) {
                XCTAssertEqual(($0 as? NetleaseError)?.code, .badRequest, line)
            }
        }
    }
}
