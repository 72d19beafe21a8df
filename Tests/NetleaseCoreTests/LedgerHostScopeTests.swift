import NetleaseCore
import XCTest

/// What an agent's claim (host and current epoch) may touch: the networks its host joined, its own records, and no
/// quarantine once started. Each rule closes a way for one host credential to take or block addresses that belong
/// to other hosts or to other networks.
final class LedgerHostScopeTests: XCTestCase {
    let start: Millis = 1_700_000_000_000
    var ledger = Ledger()
    var changes: [LedgerChange] = []

    override func setUp() {
        ledger = Ledger()
        changes = []
    }

    private func network(_ name: String, _ subnet: String) throws {
        _ = try ledger.createNetwork(
            NetworkSpec(name: name, subnet: IPv4Subnet(subnet)!, leaseTTL: 30, cooldown: 600),
            now: start,
            changes: &changes
        )
    }

    private func join(_ host: String, _ underlay: String, networks: [String]) throws -> HostClaim {
        let joined = try ledger.join(
            host: host,
            underlay: IPv4Address(underlay)!,
            networks: networks,
            now: start,
            changes: &changes
        )
        return HostClaim(host: host, epoch: joined.host.epoch)
    }

    private func acquire(_ network: String, _ owner: String, _ claim: HostClaim) throws -> Lease {
        try ledger.acquire(network: network, owner: owner, claim: claim, wanted: nil, now: start + 1, changes: &changes)
    }

    private static func report(
        _ address: IPv4Address,
        in network: String,
        by claim: HostClaim
    ) -> (
        inout Ledger, inout [LedgerChange]
    ) throws -> Void {
        { ledger, changes in
            _ = try ledger.reportConflict(
                network: network,
                address: address,
                mac: "02:00:00:00:00:66",
                claim: claim,
                now: 1_700_000_000_003,
                changes: &changes
            )
        }
    }

    /// Runs `body`, which must throw `code`, and checks that the ledger did not change.
    private func assertRefused(
        _ code: ErrorCode,
        _ what: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: (inout Ledger, inout [LedgerChange]) throws -> Void
    ) {
        let before = ledger
        var attempt: [LedgerChange] = []
        XCTAssertThrowsError(try body(&ledger, &attempt), what, file: file, line: line) { error in
            XCTAssertEqual((error as? NetleaseError)?.code, code, "\(what): \(error)", file: file, line: line)
        }
        XCTAssertEqual(attempt, [], "\(what) changed something", file: file, line: line)
        XCTAssertEqual(ledger.books["blue"]?.records, before.books["blue"]?.records, what, file: file, line: line)
        XCTAssertEqual(ledger.books["green"]?.records, before.books["green"]?.records, what, file: file, line: line)
    }

    func testAClaimActsOnlyInTheNetworksItsHostJoined() throws {
        try network("blue", "10.1.0.0/24")
        try network("green", "10.2.0.0/24")
        let h1 = try join("h1", "192.0.2.1", networks: ["blue"])
        let inGreen = IPv4Address("10.2.0.9")!
        assertRefused(.forbidden, "ACQUIRE in a network h1 did not join") { ledger, changes in
            _ = try ledger.acquire(network: "green", owner: "c1", claim: h1, wanted: nil, now: 1, changes: &changes)
        }
        assertRefused(
            .forbidden,
            "REPORT-CONFLICT in a network h1 did not join",
            Self.report(inGreen, in: "green", by: h1)
        )
        assertRefused(.forbidden, "RECONCILE in a network h1 did not join") { ledger, changes in
            _ = try ledger.reconcile(
                network: "green",
                owner: "c1",
                address: inGreen,
                ifname: "",
                claim: h1,
                now: start + 1,
                changes: &changes
            )
        }
        // In its own network each works; an admin (no epoch) may still name any host anywhere.
        let own = try acquire("blue", "c1", h1)
        XCTAssertEqual(own.host, "h1")
        let admin = try acquire("green", "s1", HostClaim(host: "h1"))
        XCTAssertEqual(admin.host, "h1")
    }

    /// REPORT-CONFLICT over another host's cooling address used to turn it into the reporter's quarantine; a RELEASE
    /// and a RECONCILE by the reporter then adopted the address while the lost host's container still used it.
    func testAnotherHostsCoolingAddressCannotBeQuarantinedReleasedAndAdopted() throws {
        try network("blue", "10.1.0.0/24")
        let h1 = try join("h1", "192.0.2.1", networks: ["blue"])
        let h2 = try join("h2", "192.0.2.2", networks: ["blue"])
        let lease = try acquire("blue", "web", h2)
        _ = try ledger.release(
            network: "blue",
            owner: "web",
            address: nil,
            claim: h2,
            now: start + 2,
            changes: &changes
        )
        let cooling = try XCTUnwrap(ledger.books["blue"]?.record(lease.address))
        XCTAssertEqual(cooling.state, .cooldown)

        assertRefused(
            .conflict,
            "a quarantine over h2's cooling address",
            Self.report(lease.address, in: "blue", by: h1)
        )
        let outcome = try ledger.reconcile(
            network: "blue",
            owner: "evil",
            address: lease.address,
            ifname: "",
            claim: h1,
            now: start + 4,
            changes: &changes
        )
        XCTAssertEqual(outcome, .taken(by: cooling), "h1 adopted h2's cooling address")
        XCTAssertEqual(
            ledger.books["blue"]?.record(lease.address),
            cooling,
            "the cooldown and its end stay as they were"
        )
    }

    /// An agent's report starts a quarantine; only an admin ends it.
    func testAQuarantineIsLiftedByAnAdminNotByTheReportingHost() throws {
        try network("blue", "10.1.0.0/24")
        let h1 = try join("h1", "192.0.2.1", networks: ["blue"])
        let address = IPv4Address("10.1.0.77")!
        let quarantine = try ledger.reportConflict(
            network: "blue",
            address: address,
            mac: "02:00:00:00:00:77",
            claim: h1,
            now: start + 1,
            changes: &changes
        )
        XCTAssertEqual(quarantine.state, .conflict)
        assertRefused(.conflict, "the reporter's RELEASE of its quarantine") { ledger, changes in
            _ = try ledger.release(
                network: "blue",
                owner: nil,
                address: address,
                claim: h1,
                now: start + 2,
                changes: &changes
            )
        }
        let lifted = try ledger.release(
            network: "blue",
            owner: nil,
            address: address,
            claim: nil,
            now: start + 3,
            changes: &changes
        )
        XCTAssertEqual(lifted?.state, .cooldown, "the admin's RELEASE lifts it through cooldown")
    }

    /// A lost host keeps its underlay: another host joining from it used to be accepted, and the lost host's own
    /// JOIN then got `conflict` — one host credential could lock a lost host out and take its tunnels.
    func testALostHostsUnderlayIsNotTakenByAnotherHost() throws {
        try network("blue", "10.1.0.0/24")
        _ = try join("h1", "192.0.2.1", networks: ["blue"])
        let lost = ledger.reclaim(now: start + 31_000, changes: &changes)
        XCTAssertEqual(lost, ["h1"])
        assertRefused(.conflict, "h2 joining from lost h1's underlay") { ledger, changes in
            _ = try ledger.join(
                host: "h2",
                underlay: IPv4Address("192.0.2.1")!,
                networks: ["blue"],
                now: self.start + 32_000,
                changes: &changes
            )
        }
        XCTAssertNil(ledger.hosts["h2"])
        let back = try ledger.join(
            host: "h1",
            underlay: IPv4Address("192.0.2.1")!,
            networks: ["blue"],
            now: start + 33_000,
            changes: &changes
        )
        XCTAssertEqual(back.host.state, .up, "the lost host comes back from its underlay")
    }

    /// The refusals a host credential can provoke name the address and the holding host, not the holder's owner:
    /// another host's owners are not the asker's to see (LEASE-LIST hides them).
    func testRefusalsDoNotNameAnotherHostsOwner() throws {
        try network("blue", "10.1.0.0/24")
        let h1 = try join("h1", "192.0.2.1", networks: ["blue"])
        let h2 = try join("h2", "192.0.2.2", networks: ["blue"])
        let held = try acquire("blue", "payroll-db", h2)
        var messages: [String] = []
        do {
            _ = try ledger.acquire(
                network: "blue",
                owner: "mine",
                claim: h1,
                wanted: held.address,
                now: start + 2,
                changes: &changes
            )
        } catch let error as NetleaseError { messages.append(error.message) }
        do {
            try Self.report(held.address, in: "blue", by: h1)(&ledger, &changes)
        } catch let error as NetleaseError { messages.append(error.message) }
        XCTAssertEqual(messages.count, 2, "both were refused")
        for message in messages {
            XCTAssertTrue(message.contains("host 'h2'"), message)
            XCTAssertFalse(message.contains("payroll-db"), message)
        }
    }
}
