import NetleaseCore
import NetleaseWire
import XCTest

/// ACQUIRE's `from` field (a hand-over): rendered, parsed, and refused without what it needs.
final class AcquireFromTests: XCTestCase {
    func testRoundTrip() throws {
        let request = Request.acquire(
            AcquireRequest(
                network: "blue",
                owner: "web",
                claim: HostClaim(host: "h1", epoch: 4),
                address: IPv4Address(10, 1, 0, 7),
                ifname: "eth0",
                from: "pool:h1:2f"
            )
        )
        let line = request.rendered
        XCTAssertEqual(
            line,
            "ACQUIRE network=blue owner=web host=h1 epoch=4 address=10.1.0.7 ifname=eth0 from=pool:h1:2f"
        )
        XCTAssertEqual(try Request(line: Substring(line)), request)
    }

    func testFromNeedsAnAddressAndACurrentClaim() {
        for line in [
            "ACQUIRE network=blue owner=web host=h1 epoch=4 from=pool:h1:2f",
            "ACQUIRE network=blue owner=web address=10.1.0.7 from=pool:h1:2f",
            "ACQUIRE network=blue owner=web host=h1 address=10.1.0.7 from=pool:h1:2f",
            "ACQUIRE network=blue owner=web host=h1 epoch=4 address=10.1.0.7 from=",
        ] {
            XCTAssertThrowsError(try Request(line: Substring(line)), line) {
                XCTAssertEqual(($0 as? NetleaseError)?.code, .badRequest, line)
            }
        }
    }
}
