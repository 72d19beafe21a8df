import NetleaseCore
import NetleaseWire
import XCTest

/// A template plus a number renders exactly the line of the full request.
final class RequestTemplateTests: XCTestCase {
    func testHeadDigitsAndTailAreTheRenderedRequest() throws {
        let claim = HostClaim(host: "ba-x-7", epoch: 12)
        let cases: [(template: (String) -> Request, base: String)] = [
            ({ .acquire(AcquireRequest(network: "bench", owner: $0)) }, "b-run-3-"),
            ({ .acquire(AcquireRequest(network: "bench", owner: $0, claim: claim)) }, "ba-x-7-"),
            ({ .release(ReleaseRequest(network: "bench", owner: $0)) }, "b-run-3-"),
            ({ .acquire(AcquireRequest(network: "blue", owner: $0, ifname: "eth0")) }, "needs escaping 100%-"),
        ]
        for (make, base) in cases {
            let template = RequestTemplate(make(base))
            for number in [0, 7, 42, 123_456, Int(Int32.max)] {
                let full = make(base + String(number))
                XCTAssertEqual(template.line(number), Array((full.rendered + "\n").utf8), full.rendered)
                let text = String(decoding: template.line(number).dropLast(), as: UTF8.self)
                XCTAssertEqual(try Request(line: Substring(text)), full, "parses back to the same request")
            }
        }
    }

    func testTheNumberGoesWhereTheFieldIsEvenInTheMiddle() {
        let template = RequestTemplate(
            .acquire(AcquireRequest(network: "n", owner: "h-", claim: HostClaim(host: "h", epoch: 3)))
        )
        XCTAssertEqual(String(decoding: template.head, as: UTF8.self), "ACQUIRE network=n owner=h-")
        XCTAssertEqual(String(decoding: template.tail, as: UTF8.self), " host=h epoch=3\n")
    }
}
