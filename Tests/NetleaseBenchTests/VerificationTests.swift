import NetleaseCore
import XCTest

@testable import NetleaseBench

/// The check of LEASE-LIST against what the coordinator acknowledged.
final class VerificationTests: XCTestCase {
    private func lease(_ owner: String, _ last: UInt8, state: LeaseState = .active) -> Lease {
        Lease(
            network: "bench",
            address: IPv4Address(10, 250, 0, last),
            prefix: 16,
            state: state,
            owner: owner,
            isStatic: false,
            created: 0,
            renewed: 0
        )
    }

    private func check(
        _ expected: [String: UInt8],
        _ listed: [Lease],
        forbiddenPrefix: String? = nil,
        tolerated: Set<String> = []
    ) -> Verification {
        Verification(
            expected: expected.mapValues { IPv4Address(10, 250, 0, $0).value },
            listed: listed,
            forbiddenPrefix: forbiddenPrefix,
            tolerated: tolerated
        )
    }

    func testEveryAcknowledgedLeaseListedWithItsAddressIsOK() {
        let v = check(["b-1-0": 5, "b-1-1": 6], [lease("b-1-0", 5), lease("b-1-1", 6), lease("other", 7)])
        XCTAssertTrue(v.ok, "\(v.problems)")
        XCTAssertEqual(v.acknowledgedHeld, 2)
        XCTAssertEqual(v.listed, 3)
        XCTAssertEqual(v.problems, [])
    }

    func testAMissingLeaseIsReported() {
        let v = check(["b-1-0": 5, "b-1-1": 6], [lease("b-1-0", 5), lease("b-1-1", 6, state: .cooldown)])
        XCTAssertFalse(v.ok)
        XCTAssertEqual(v.problems, ["1 acknowledged lease(s) missing from LEASE-LIST"], "only active leases count")
    }

    func testALeaseListedWithAnotherAddressIsReported() {
        let v = check(["b-1-0": 5], [lease("b-1-0", 9)])
        XCTAssertEqual(v.problems, ["1 acknowledged lease(s) listed with another address"])
    }

    func testAnAddressAcknowledgedToTwoOwnersIsReported() {
        let v = check(["b-1-0": 5, "b-2-0": 5], [lease("b-1-0", 5)])
        XCTAssertTrue(v.problems.contains("1 address(es) acknowledged to two owners"), "\(v.problems)")
        XCTAssertFalse(v.ok)
    }

    func testAnAddressListedTwiceIsReported() {
        let v = check([:], [lease("x", 5), lease("y", 5, state: .cooldown)])
        XCTAssertEqual(v.problems, ["address 10.250.0.5 listed twice"])
    }

    func testReleasedLeasesStillActiveAreLeftoversUnlessTheirReleaseFailed() {
        let listed = [lease("b-1-0", 5), lease("b-1-1", 6), lease("b-10-0", 7), lease("fill-0-0", 8)]
        let v = check(["fill-0-0": 8], listed, forbiddenPrefix: "b-1-", tolerated: ["b-1-1"])
        XCTAssertEqual(v.problems, ["1 released lease(s) still active"], "b-1-0 only: b-1-1 failed to release")
        XCTAssertTrue(check(["fill-0-0": 8], listed, forbiddenPrefix: "z-").ok)
        XCTAssertTrue(
            check([:], [lease("b-1-0", 5, state: .cooldown)], forbiddenPrefix: "b-1-").ok,
            "a released lease in cooldown is fine"
        )
    }

    func testProblemsAreCappedForTheReport() {
        let listed = (0..<30).flatMap { [lease("x\($0)", UInt8($0)), lease("y\($0)", UInt8($0))] }
        let v = check([:], listed)
        XCTAssertEqual(v.problems.count, Verification.maxProblems + 1)
        XCTAssertEqual(v.problems.last, "…")
    }
}
