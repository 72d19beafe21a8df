import Foundation
import NetleaseCore
import NetleaseTesting
import XCTest

@testable import NetleaseStore

/// Invariant 4 across a restart: the free-address index is rebuilt from the SQLite file at start, so everything that
/// must never be handed out — excluded ranges, admin reservations, conflict quarantine, cooldowns, bridge addresses,
/// network and broadcast addresses — must come back from the file. The pool is exhausted after the restart, so an
/// address the rebuilt index wrongly thinks free is handed out (or trips the unique key) instead of going unnoticed.
final class StoreNeverHandedOutAfterRestartTests: StoreTestCase {
    func testExclusionsReservationsConflictsAndCooldownsAreNeverHandedOutAfterARestart() async throws {
        let network = "pool"
        let cidr = subnet("10.9.0.0/24")
        let excluded = ["10.9.0.10-10.9.0.19", "10.9.0.200/29", "10.9.0.77"].map { IPv4Range($0)! }
        let store = try openStore()
        _ = try await store.createNetwork(
            NetworkSpec(name: network, subnet: cidr, cooldown: 3_600, excluded: excluded)
        )
        var bridges: [IPv4Address] = []
        var claim: HostClaim?
        for host in ["h1", "h2"] {
            let joined = try await store.join(
                host: host,
                underlay: ip("192.168.0.\(bridges.count + 1)"),
                networks: [network]
            )
            bridges.append(try XCTUnwrap(joined.bridges.first?.address, "\(host) got no bridge address"))
            if claim == nil { claim = HostClaim(host: host, epoch: joined.host.epoch) }
        }
        let reserved = [ip("10.9.0.30"), ip("10.9.0.31")]
        for address in reserved { _ = try await store.reserve(network: network, address: address, note: "printer") }
        let quarantined = ip("10.9.0.40")
        _ = try await store.reportConflict(
            network: network,
            address: quarantined,
            mac: "02:00:00:00:00:40",
            claim: try XCTUnwrap(claim)
        )
        var cooling: [IPv4Address] = []
        for owner in ["gone-1", "gone-2"] {
            cooling.append(try await acquire(store, network, owner).address)
            _ = try await store.release(network: network, owner: owner, address: nil, claim: nil)
        }
        let kept = try await acquire(store, network, "kept")

        // The restart: the ledger and its free index are rebuilt from the file alone (the clock has not moved, so
        // the cooldowns still run).
        let restarted = try reopen(store)

        var excludedAddresses: Set<IPv4Address> = []
        for range in excluded {
            for value in range.first.value...range.last.value { excludedAddresses.insert(IPv4Address(value)) }
        }
        let forbidden = excludedAddresses.union(reserved).union([quarantined]).union(cooling).union(bridges)
            .union([kept.address, cidr.network, cidr.broadcast])
        // 19 excluded, 2 reserved, 1 quarantined, 2 cooling, 2 bridges, 1 kept, network and broadcast.
        XCTAssertEqual(forbidden.count, 29, "fixture addresses overlap")

        var handedOut: [IPv4Address] = []
        fill: while true {
            do {
                handedOut.append(try await acquire(restarted, network, "fill-\(handedOut.count)").address)
            } catch let error as NetleaseError where error.code == .poolExhausted {
                break fill
            } catch {
                XCTFail("acquire \(handedOut.count + 1) after the restart failed with \(error), not pool-exhausted")
                break fill
            }
            guard handedOut.count <= 256 else {
                XCTFail("more than 256 acquires succeeded in a /24")
                break fill
            }
        }
        let leaked = Set(handedOut).intersection(forbidden)
        XCTAssertEqual(
            leaked,
            [],
            "handed out after the restart although never to be handed out: "
                + leaked.sorted().map(\.description).joined(separator: ", ")
        )
        XCTAssertEqual(Set(handedOut).count, handedOut.count, "an address was handed out twice")
        // Nothing else was lost either: the pool is exactly every host address that is not forbidden.
        var expected: Set<IPv4Address> = []
        for value in (cidr.network.value + 1)..<cidr.broadcast.value where !forbidden.contains(IPv4Address(value)) {
            expected.insert(IPv4Address(value))
        }
        XCTAssertEqual(Set(handedOut), expected, "the rebuilt pool differs from the free addresses")

        // Asked for by name, each forbidden address is refused, and the owner of a kept lease gets it back.
        for address in forbidden.sorted() where address != kept.address {
            do {
                let lease = try await acquire(restarted, network, "wants-\(address)", at: address)
                XCTFail("\(address) was handed out on request after the restart: \(lease)")
            } catch is NetleaseError {
                // refused, whichever the code
            }
        }
        let again = try await acquire(restarted, network, "kept")
        XCTAssertEqual(again.address, kept.address)

        // The file agrees: every quarantine and reservation is still in its state.
        restarted.close()
        let rows = try storedLeases()
        let state = Dictionary(uniqueKeysWithValues: rows.map { ($0.address, $0.state) })
        for address in reserved { XCTAssertEqual(state[address], "reserved", "\(address)") }
        XCTAssertEqual(state[quarantined], "conflict")
        for address in cooling { XCTAssertEqual(state[address], "cooldown", "\(address)") }
        for address in excludedAddresses { XCTAssertNil(state[address], "a row for excluded \(address)") }
    }
}
