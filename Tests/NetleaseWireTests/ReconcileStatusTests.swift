import NetleaseCore
import NetleaseWire
import XCTest

final class ReconcileStatusTests: XCTestCase {
    private let lease = Lease(
        network: "blue",
        address: IPv4Address(10, 40, 0, 11),
        prefix: 24,
        state: .active,
        host: "node1",
        owner: "web",
        ifname: "eth0",
        isStatic: false,
        created: 1_795_914_656_781,
        renewed: 1_795_914_656_784
    )

    /// The spelling docs/PROTOCOL.md gives: LEASE fields first, `status` last.
    func testRendersTheDocumentedReply() {
        XCTAssertEqual(
            Reply.ok(WireCodec.fields(reconcile: .taken(by: lease))).rendered,
            "OK network=blue address=10.40.0.11/24 state=active host=node1 owner=web ifname=eth0 note= mac= static=0 "
                + "created=1795914656781 renewed=1795914656784 until=0 status=taken\n"
        )
        XCTAssertEqual(ReconcileStatus.allCases.map(\.rawValue), ["held", "adopted", "taken", "moved"])
    }

    func testEveryOutcomeRoundTripsThroughAReplyLine() throws {
        let outcomes: [ReconcileOutcome] = [.held(lease), .adopted(lease), .taken(by: lease), .moved(to: lease)]
        for outcome in outcomes {
            let rendered = Reply.ok(WireCodec.fields(reconcile: outcome)).rendered
            guard case .ok(let fields, nil) = try Reply.parseHead(Substring(rendered.dropLast())) else {
                return XCTFail("not a plain OK reply: \(rendered)")
            }
            XCTAssertEqual(try WireCodec.reconcileOutcome(from: fields), outcome, rendered)
            XCTAssertEqual(ReconcileOutcome(status: outcome.status, lease: outcome.lease), outcome)
        }
    }

    func testAnUnknownOrMissingStatusIsADecodeError() {
        let cases: [(status: String?, fragment: String)] = [
            ("gone", "unknown reconcile status 'gone'; expected one of held, adopted, taken, moved"),
            ("HELD", "unknown reconcile status 'HELD'"),
            ("", "unknown reconcile status ''"),
            (nil, "missing field 'status'"),
        ]
        for c in cases {
            var fields = WireCodec.fields(lease: lease)
            if let status = c.status { fields.append("status", status) }
            XCTAssertThrowsError(try WireCodec.reconcileOutcome(from: fields), c.fragment) {
                guard let error = $0 as? NetleaseError else { return XCTFail("not a NetleaseError: \($0)") }
                XCTAssertEqual(error.code, .badRequest)
                XCTAssertTrue(error.message.contains(c.fragment), error.message)
            }
        }
    }
}
