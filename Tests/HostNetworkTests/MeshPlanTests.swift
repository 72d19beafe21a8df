import NetleaseCore
import XCTest

final class MeshPlanTests: XCTestCase {
    private let local = IPv4Address(10, 0, 0, 1)
    private let b = IPv4Address(10, 0, 0, 2)
    private let c = IPv4Address(10, 0, 0, 3)
    private let d = IPv4Address(10, 0, 0, 9)

    private func endpoint(_ address: IPv4Address) -> MeshEndpoint<IPv4Address> {
        MeshEndpoint(key: address, underlay: address)
    }

    func testAddressPlanCases() {
        struct Case {
            var name: String
            var peers: [String: IPv4Address]
            var observed: Set<IPv4Address>
            var remove: [IPv4Address]
            var add: [IPv4Address]
        }
        let cases = [
            Case(name: "nothing yet", peers: ["b": b, "c": c], observed: [], remove: [], add: [b, c]),
            Case(name: "all there", peers: ["b": b, "c": c], observed: [b, c], remove: [], add: []),
            Case(name: "peer joins", peers: ["b": b, "c": c], observed: [b], remove: [], add: [c]),
            Case(name: "peer leaves", peers: ["b": b], observed: [b, c], remove: [c], add: []),
            Case(name: "peer moves", peers: ["b": b, "c": d], observed: [b, c], remove: [c], add: [d]),
            Case(name: "self is no peer", peers: ["a": local, "b": b], observed: [], remove: [], add: [b]),
            Case(name: "entry to self is removed", peers: ["a": local], observed: [local], remove: [local], add: []),
            Case(name: "two peers one address", peers: ["b": b, "b2": b], observed: [], remove: [], add: [b]),
            Case(name: "no peers", peers: [:], observed: [c, b], remove: [b, c], add: []),
        ]
        for test in cases {
            let plan = MeshPlan(peers: test.peers, local: local, observedDestinations: test.observed)
            XCTAssertEqual(plan.remove, test.remove.map(endpoint), test.name)
            XCTAssertEqual(plan.add, test.add.map(endpoint), test.name)
            XCTAssertEqual(plan.isEmpty, test.remove.isEmpty && test.add.isEmpty, test.name)
        }
    }

    func testPerPeerPlanKeysByName() {
        let plan = MeshPlan(
            peers: ["host-b": b, "host-c": d, "host-a": local],
            local: local,
            observed: ["gre-host-c": c, "gre-host-x": b]
        ) { "gre-" + $0 }
        XCTAssertEqual(
            plan.remove,
            [
                MeshEndpoint(key: "gre-host-c", underlay: c), MeshEndpoint(key: "gre-host-x", underlay: b),
            ]
        )
        XCTAssertEqual(
            plan.add,
            [
                MeshEndpoint(key: "gre-host-b", underlay: b), MeshEndpoint(key: "gre-host-c", underlay: d),
            ]
        )
    }

    func testPlanWithoutLocalKeepsEveryPeer() {
        let plan = MeshPlan(desired: ["x": local], observed: [String: IPv4Address]())
        XCTAssertEqual(plan.add, [MeshEndpoint(key: "x", underlay: local)])
        XCTAssertTrue(MeshPlan(desired: ["x": b], observed: ["x": b]).isEmpty)
    }

    func testPlanIsDeterministic() {
        var peers: [String: IPv4Address] = [:]
        for index in 0..<50 { peers["h\(index)"] = IPv4Address(10, 1, 0, UInt8(index + 1)) }
        let first = MeshPlan(peers: peers, local: nil, observedDestinations: [])
        XCTAssertEqual(first.add.map(\.key), first.add.map(\.key).sorted())
        XCTAssertEqual(first, MeshPlan(peers: peers, local: nil, observedDestinations: []))
    }
}
