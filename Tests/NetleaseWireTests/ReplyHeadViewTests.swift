import NetleaseCore
import NetleaseWire
import XCTest

/// The in-place reply reader against the full parser: on every line they must agree.
final class ReplyHeadViewTests: XCTestCase {
    private func withView<T>(_ line: String, _ body: (ReplyHeadView) -> T) -> T {
        Array(line.utf8).withUnsafeBytes { body(ReplyHeadView($0)) }
    }

    /// The status `Reply.parseHead` gives the line, in the view's terms.
    private func parsedStatus(_ line: String) -> ReplyHeadView.Status {
        switch try? Reply.parseHead(Substring(line)) {
        case .ok?: .ok
        case .error(let error)?: .error(error.code)
        case nil: .malformed
        }
    }

    private static let lease = Lease(
        network: "bench",
        address: IPv4Address(10, 250, 3, 7),
        prefix: 16,
        state: .active,
        host: "h 1",
        owner: "b-x-3-41",
        ifname: "eth0",
        note: "kept address=9.9.9.9/8",
        isStatic: false,
        created: 1,
        renewed: 2
    )

    func testStatusAgreesWithTheFullParser() {
        var lines = ErrorCode.allCases.map { Reply.error(NetleaseError($0, "message with 100% of it")).lines[0] }
        lines += [
            Reply.ok(WireCodec.fields(lease: Self.lease)).lines[0],
            Reply.ok(["released": "0"]).lines[0],
            Reply.ok(Fields()).lines[0],
            Reply.list(header: ["epoch": "3"], tag: WireCodec.leaseTag, records: []).lines[0],
            "OK\r", "ok pong=1", "  OK pong=1", "Ok", "OK  x=1",
            "ERR made-up-code something", "ERR  pool-exhausted two spaces", "ERR pool-exhausted",
            "ERR", "ERRX pool-exhausted", "OKAY", "HELLO x=1", "", "NETLEASE version=1 auth=required",
            "LEASE network=bench", "EVENT kind=keepalive",
        ]
        for line in lines {
            XCTAssertEqual(withView(line) { $0.status }, parsedStatus(line), line.debugDescription)
        }
    }

    func testErrorCodesAreReadAsTheParserReadsThem() {
        XCTAssertEqual(withView("ERR pool-exhausted no free address") { $0.status }, .error(.poolExhausted))
        XCTAssertEqual(withView("ERR stale-epoch\r") { $0.status }, .error(.staleEpoch))
        XCTAssertEqual(
            withView("ERR teapot short and stout") { $0.status },
            .error(.internalError),
            "an unknown code is internal, as in Reply.parseHead"
        )
        XCTAssertEqual(withView("OKAY") { $0.status }, .malformed)
    }

    func testLeaseAddressAgreesWithTheLeaseCodec() throws {
        let leases = [
            Self.lease,
            Lease(network: "n", address: IPv4Address(0), prefix: 0, state: .active, created: 0, renewed: 0),
            Lease(network: "n", address: IPv4Address(.max), prefix: 32, state: .reserved, created: 0, renewed: 0),
            Lease(
                network: "n",
                address: IPv4Address(172, 30, 0, 5),
                prefix: 9,
                state: .active,
                created: 0,
                renewed: 0
            ),
        ]
        for lease in leases {
            let line = Reply.ok(WireCodec.fields(lease: lease)).lines[0]
            guard case .ok(let fields, _) = try Reply.parseHead(Substring(line)) else { return XCTFail(line) }
            let decoded = try WireCodec.lease(from: fields)
            let viewed = withView(line) { $0.leaseAddress }
            XCTAssertEqual(viewed?.address, decoded.address, line)
            XCTAssertEqual(viewed?.prefix, decoded.prefix, line)
        }
    }

    func testLeaseAddressRefusesWhatTheLeaseCodecRefuses() {
        for value in [
            "10.0.0.1", "10.0.0.1/33", "01.0.0.1/8", "10.0.0.1/8/9", "10.0.0/8", "/8", "10.0.0.1/",
            "10.0.0.1/x", "256.0.0.1/8", "10.0.0.1%2F8", "", "1.2.3.4.5/8", "1..2.3/8", ".1.2.3/8",
            "1000.2.3.4/8", "1.2.3.4/100",
        ] {
            let fields: Fields = ["network": "n", "address": value, "state": "active"]
            XCTAssertThrowsError(try WireCodec.lease(from: fields), value)
            XCTAssertNil(withView(Reply.ok(fields).lines[0]) { $0.leaseAddress }, value)
        }
        XCTAssertNil(withView("OK released=0") { $0.leaseAddress }, "no address field")
    }

    func testFieldsAreFoundOnlyWhereAFieldStarts() {
        // The note's escaped space keeps its "address=" inside the value; "xaddress" is another key.
        let line = "OK note=a%20address=9.9.9.9/8 xaddress=8.8.8.8/8 address=10.0.0.1/24 count=3 empty="
        XCTAssertEqual(withView(line) { $0.leaseAddress?.address }, IPv4Address(10, 0, 0, 1))
        XCTAssertEqual(
            withView(line) { $0.value("note").map { String(decoding: $0, as: UTF8.self) } },
            "a%20address=9.9.9.9/8",
            "values stay escaped"
        )
        XCTAssertEqual(withView(line) { $0.value("count").map { String(decoding: $0, as: UTF8.self) } }, "3")
        XCTAssertEqual(withView(line) { $0.value("empty").map(\.count) }, 0)
        XCTAssertNil(withView(line) { $0.value("addr") })
        XCTAssertNil(withView(line) { $0.value("OK") })
        XCTAssertNil(withView("OK") { $0.value("address") })
    }
}
