import XCTest

@testable import NetleaseCore

/// `Ledger.handOver`: a host's active lease changes owner, keeping its address, and nothing else changes.
final class HandOverTests: XCTestCase {
    private let now: Millis = 1_700_000_000_000
    private var ledger = Ledger()
    private var claim = HostClaim(host: "h1")
    private var pooled: Lease!

    override func setUpWithError() throws {
        var changes: [LedgerChange] = []
        _ = try ledger.createNetwork(
            NetworkSpec(name: "blue", subnet: IPv4Subnet("10.1.0.0/24")!, cooldown: 60),
            now: now,
            changes: &changes
        )
        let joined = try ledger.join(
            host: "h1",
            underlay: IPv4Address(192, 0, 2, 1),
            networks: [],
            now: now,
            changes: &changes
        )
        _ = try ledger.join(
            host: "h2",
            underlay: IPv4Address(192, 0, 2, 2),
            networks: [],
            now: now,
            changes: &changes
        )
        claim = HostClaim(host: "h1", epoch: joined.host.epoch)
        pooled = try ledger.acquire(
            network: "blue",
            owner: "pool:h1:1",
            claim: claim,
            wanted: nil,
            now: now,
            changes: &changes
        )
    }

    func testTheAddressChangesOwnerAndARetryGetsTheSameLease() throws {
        var changes: [LedgerChange] = []
        let given = try ledger.handOver(
            network: "blue",
            address: pooled.address,
            from: "pool:h1:1",
            to: "web",
            ifname: "eth0",
            claim: claim,
            now: now + 5,
            changes: &changes
        )
        XCTAssertEqual(given.address, pooled.address)
        XCTAssertEqual(given.owner, "web")
        XCTAssertEqual(given.host, "h1")
        XCTAssertEqual(given.ifname, "eth0")
        XCTAssertFalse(given.isStatic)
        XCTAssertEqual(given.created, now + 5)
        XCTAssertEqual(changes, [.updateLease(given)])
        let book = try ledger.network("blue")
        XCTAssertEqual(book.activeLease(owner: "web"), given)
        XCTAssertNil(book.activeLease(owner: "pool:h1:1"), "the placeholder still holds an address")
        XCTAssertEqual(book.counts.active, 3, "two bridges and one container: nothing allocated, nothing freed")

        var again: [LedgerChange] = []
        let retried = try ledger.handOver(
            network: "blue",
            address: pooled.address,
            from: "pool:h1:1",
            to: "web",
            ifname: "eth0",
            claim: claim,
            now: now + 9,
            changes: &again
        )
        XCTAssertEqual(retried, given)
        XCTAssertEqual(again, [], "a retry after a lost reply writes nothing")
    }

    func testOnlyTheClaimingHostsLeaseOfThatOwnerIsHandedOver() throws {
        var changes: [LedgerChange] = []
        let other = try ledger.acquire(
            network: "blue",
            owner: "db",
            claim: HostClaim(host: "h2"),
            wanted: nil,
            now: now,
            changes: &changes
        )
        changes = []
        let cases: [(IPv4Address, String, String, HostClaim, ErrorCode)] = [
            (pooled.address, "pool:h1:2", "web", claim, .conflict),  // held by another owner
            (other.address, "db", "web", claim, .conflict),  // another host's lease
            (IPv4Address(10, 1, 0, 200), "pool:h1:1", "web", claim, .conflict),  // free address
            (pooled.address, "pool:h1:1", "db", claim, .conflict),  // the new owner holds another address
            (pooled.address, "pool:h1:1", "bridge:h1", claim, .badRequest),
            (pooled.address, "pool:h1:1", "web", HostClaim(host: "h1"), .badRequest),  // no epoch
            (pooled.address, "pool:h1:1", "web", HostClaim(host: "h1", epoch: 99), .staleEpoch),
        ]
        for (address, from, owner, claim, code) in cases {
            XCTAssertThrowsError(
                try ledger.handOver(
                    network: "blue",
                    address: address,
                    from: from,
                    to: owner,
                    ifname: "",
                    claim: claim,
                    now: now,
                    changes: &changes
                )
            ) {
                XCTAssertEqual(($0 as? NetleaseError)?.code, code, "\(from) → \(owner) at \(address): \($0)")
            }
        }
        XCTAssertEqual(changes, [], "a refused hand-over writes nothing")
        XCTAssertEqual(try ledger.network("blue").activeLease(owner: "pool:h1:1"), pooled)
    }
}
