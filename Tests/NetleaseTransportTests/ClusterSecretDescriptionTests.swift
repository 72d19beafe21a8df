import NetleaseTransport
import XCTest

/// A secret never shows its bytes when a value holding it is printed (service descriptions, errors, dumps).
final class ClusterSecretDescriptionTests: XCTestCase {
    private struct Holder {
        var name = "coordinator"
        var secret: ClusterSecret?
    }

    func testNoDescriptionCarriesTheSecret() {
        let text = "0123456789abcdef0123456789abcdef"
        let holder = Holder(secret: ClusterSecret(text))
        let asBytes = Array(text.utf8).map(String.init).joined(separator: ", ")
        var dumped = ""
        dump(holder, to: &dumped)
        for shown in [String(describing: holder), String(reflecting: holder), "\(holder.secret!)", dumped] {
            XCTAssertFalse(shown.contains(text), shown)
            XCTAssertFalse(shown.contains(asBytes), shown)
            XCTAssertTrue(shown.contains("ClusterSecret"), shown)
        }
        XCTAssertEqual(holder.secret?.text, text)
    }
}
