import Foundation
import NetleaseCore
import NetleaseStore
import XCTest

@testable import NetleaseStoreTests

// The store contract suites run against PostgreSQL: each subclass swaps the backend and names every test of its
// suite again (XCTest on Linux discovers only test methods a class declares itself).
// `PostgresContractCoverageTests` fails when a suite gains a test that is not listed here.

final class PostgresStoreAllocationTests: StoreAllocationTests {
    override class func makeBackend(for test: StoreTestCase) throws -> StoreTestBackend {
        try PostgresTestBackend()
    }

    override func testConcurrentAcquiresGetDistinctAddressesAndAllAreStored() async throws {
        try await super.testConcurrentAcquiresGetDistinctAddressesAndAllAreStored()
    }

    override func testSameOwnerGetsTheSameAddressAlsoAfterReopen() async throws {
        try await super.testSameOwnerGetsTheSameAddressAlsoAfterReopen()
    }

    override func testRepeatedReleaseReturnsNilAndChangesNothing() async throws {
        try await super.testRepeatedReleaseReturnsNilAndChangesNothing()
    }

    override func testReleasedAddressWaitsForItsCooldown() async throws {
        try await super.testReleasedAddressWaitsForItsCooldown()
    }

    override func testCooldownSurvivesRestart() async throws {
        try await super.testCooldownSurvivesRestart()
    }

    override func testReservationsAndQuarantinedAddressesAreNeverHandedOut() async throws {
        try await super.testReservationsAndQuarantinedAddressesAreNeverHandedOut()
    }

    override func testExhaustionReportsEveryCount() async throws {
        try await super.testExhaustionReportsEveryCount()
    }

    override func testSmallestNetworkExhaustsAfterItsTwoAddresses() async throws {
        try await super.testSmallestNetworkExhaustsAfterItsTwoAddresses()
    }

    override func testNetworkDeleteIsRefusedWhileContainersHoldLeases() async throws {
        try await super.testNetworkDeleteIsRefusedWhileContainersHoldLeases()
    }
}

final class PostgresStoreHostTests: StoreHostTests {
    override class func makeBackend(for test: StoreTestCase) throws -> StoreTestBackend {
        try PostgresTestBackend()
    }

    override func testJoinAndRejoinIncrementTheEpochAndFenceTheOldOne() async throws {
        try await super.testJoinAndRejoinIncrementTheEpochAndFenceTheOldOne()
    }

    override func testLeasesAreReclaimedOnlyAfterAWholeTTLWithoutHeartbeats() async throws {
        try await super.testLeasesAreReclaimedOnlyAfterAWholeTTLWithoutHeartbeats()
    }

    override func testBridgeAddressIsNeverHandedToAContainer() async throws {
        try await super.testBridgeAddressIsNeverHandedToAContainer()
    }

    override func testHandOverKeepsTheAddressDurablyAndTakesOnlyTheHostsOwnLease() async throws {
        try await super.testHandOverKeepsTheAddressDurablyAndTakesOnlyTheHostsOwnLease()
    }
}

final class PostgresStoreReclaimRaceTests: StoreReclaimRaceTests {
    override class func makeBackend(for test: StoreTestCase) throws -> StoreTestBackend {
        try PostgresTestBackend()
    }

    override func testReclaimingConcurrentlyWithAcquiresNeverReclaimsALiveLease() async throws {
        try await super.testReclaimingConcurrentlyWithAcquiresNeverReclaimsALiveLease()
    }
}

/// Every test of every contract suite has its PostgreSQL twin above.
final class PostgresContractCoverageTests: XCTestCase {
    func testEveryContractTestRunsAgainstPostgreSQL() throws {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let twins = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        for suite in ["StoreAllocationTests", "StoreHostTests", "StoreReclaimRaceTests", "StoreCredentialTests"] {
            let source = try String(
                contentsOf: tests.appendingPathComponent("NetleaseStoreTests/\(suite).swift"),
                encoding: .utf8
            )
            let names = source.split(separator: "\n").compactMap { line -> String? in
                guard let range = line.range(of: "func test") else { return nil }
                return String(line[range.lowerBound...].dropFirst(5).prefix { $0 != "(" })
            }
            XCTAssertFalse(names.isEmpty, "no tests found in \(suite)")
            for name in names {
                XCTAssertTrue(twins.contains("override func \(name)()"), "\(suite).\(name) has no PostgreSQL twin")
            }
        }
    }
}

final class PostgresStoreCredentialTests: StoreCredentialTests {
    override class func makeBackend(for test: StoreTestCase) throws -> StoreTestBackend {
        try PostgresTestBackend()
    }

    override func testCredentialsAreReplacedRevokedAndKeptAcrossRestarts() async throws {
        try await super.testCredentialsAreReplacedRevokedAndKeptAcrossRestarts()
    }

    override func testHostNamesAreKeysByteForByte() async throws {
        try await super.testHostNamesAreKeysByteForByte()
    }

    override func testABackupCarriesTheCredentials() async throws {
        try await super.testABackupCarriesTheCredentials()
    }

    /// Two coordinators on one database: the one that took the newer term reads what the older one stored, and
    /// the deposed one can neither issue nor revoke any more (its transactions check the term).
    func testADeposedLeaderCanNeitherIssueNorRevoke() async throws {
        let old = try await credentialStore(try await makeStore())
        _ = try await old.storeHostCredential(
            StoredHostCredential(host: "h1", hash: SecretHash(hashing: "one"), issued: 1)
        )
        let new = try await credentialStore(try await makeStore())
        let read = try await new.hostCredential("h1")
        XCTAssertEqual(read?.hash.matches("one"), true)
        await expectError(.notLeader, "issue on the deposed leader") {
            try await old.storeHostCredential(
                StoredHostCredential(host: "h1", hash: SecretHash(hashing: "two"), issued: 2)
            )
        }
        await expectError(.notLeader, "revoke on the deposed leader") { try await old.revokeHostCredential("h1") }
        let kept = try await new.hostCredential("h1")
        XCTAssertEqual(kept?.hash.matches("one"), true, "a deposed leader changed a credential")
    }
}
