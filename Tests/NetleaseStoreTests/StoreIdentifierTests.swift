import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

/// Invariant 10 across the file: what the store acknowledges under a name is found under exactly those bytes, in
/// memory and after a restart; memory never treats as one key what the file keeps as two.
final class StoreIdentifierTests: StoreTestCase {
    private let kelvin = "\u{212A}"  // KELVIN SIGN: Swift's String == says it equals "K"; SQLite's keys do not

    /// Either the request is refused with bad-request naming `field`, or it succeeded (nil).
    private func refusal(
        naming field: String,
        _ what: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () async throws -> Void
    ) async -> NetleaseError? {
        do {
            try await body()
            return nil
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .badRequest, "\(what): \(error)", file: file, line: line)
            XCTAssertTrue(
                error.message.contains("'\(field)'"),
                "\(what): '\(error.message)' does not name '\(field)'",
                file: file,
                line: line
            )
            return error
        } catch {
            XCTFail("\(what): \(error)", file: file, line: line)
            return error as? NetleaseError
        }
    }

    func testNetworkDeletedUnderAnotherSpellingDoesNotComeBackAfterRestart() async throws {
        let store = try openStore()
        try await createNetwork(store, "K8s", "10.1.0.0/24")
        let refused = await refusal(naming: "network", "delete under the KELVIN SIGN spelling") {
            try await store.deleteNetwork(kelvin + "8s")
        }
        let inMemory = try await store.networks().map(\.spec.name)
        let reopened = try reopen(store)
        let afterRestart = try await reopened.networks().map(\.spec.name)
        XCTAssertEqual(inMemory, afterRestart, "memory and file disagree on the networks (refused: \(refused != nil))")
        XCTAssertEqual(afterRestart, ["K8s"])
    }

    func testHostRemovedUnderAnotherSpellingDoesNotComeBackAfterRestart() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        _ = try await store.join(host: "K1", underlay: ip("192.0.2.1"), networks: ["blue"])
        let refused = await refusal(naming: "host", "remove under the KELVIN SIGN spelling") {
            _ = try await store.removeHost(kelvin + "1")
        }
        let inMemory = try await store.hosts().map(\.name)
        let reopened = try reopen(store)
        let afterRestart = try await reopened.hosts().map(\.name)
        XCTAssertEqual(inMemory, afterRestart, "memory and file disagree on the hosts (refused: \(refused != nil))")
        XCTAssertEqual(afterRestart, ["K1"])
    }

    func testTwoSpellingsOfAnOwnerAreTwoOwnersOrOneIsRefused() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        let first = try await acquire(store, "blue", "caf\u{E9}")
        var second: Lease?
        _ = await refusal(naming: "owner", "acquire for the decomposed spelling") {
            second = try await acquire(store, "blue", "cafe\u{301}")
        }
        if let second {
            XCTAssertNotEqual(second.address, first.address, "a second owner was handed the first owner's address")
        }
        _ = await refusal(naming: "owner", "release for the decomposed spelling") {
            _ = try await store.release(network: "blue", owner: "cafe\u{301}", address: nil, claim: nil)
        }
        let active = try await store.leases(.init(network: "blue", state: .active))
        XCTAssertTrue(
            active.contains { $0.address == first.address && $0.owner.utf8.elementsEqual("caf\u{E9}".utf8) },
            "the other spelling's release freed a live lease: \(active)"
        )
    }

    /// The network under another spelling is not a key the file knows: before, the lease's row failed the foreign
    /// key and the whole group commit (everyone's) was refused with `storage`.
    func testAnotherSpellingOfANetworkIsABadRequestNotAFailedCommit() async throws {
        let store = try openStore()
        try await createNetwork(store, "K8s", "10.1.0.0/24")
        _ = await refusal(naming: "network", "acquire in the KELVIN SIGN spelling") {
            _ = try await acquire(store, kelvin + "8s", "c1")
        }
        _ = await refusal(naming: "networks", "join naming the KELVIN SIGN spelling") {
            _ = try await store.join(host: "h1", underlay: ip("192.0.2.1"), networks: [kelvin + "8s"])
        }
        XCTAssertEqual(store.statistics().failedCommits, 0, "a request's spelling failed a commit")
        _ = try await acquire(store, "K8s", "c2")
    }

    func testOwnerWithNULIsNeitherTruncatedNorAFailedCommit() async throws {
        let store = try openStore()
        try await createNetwork(store, "blue", "10.1.0.0/24")
        let owner = "web\u{0}x"
        var lease: Lease?
        _ = await refusal(naming: "owner", "owner with NUL") { lease = try await acquire(store, "blue", owner) }
        let reopened = try reopen(store)
        let leases = try await reopened.leases(.init(network: "blue"))
        if let lease {
            XCTAssertEqual(
                leases.map { Array($0.owner.utf8) },
                [Array(owner.utf8)],
                "acknowledged as \(lease.owner.debugDescription), found after restart as \(leases)"
            )
        } else {
            XCTAssertEqual(leases, [])
        }
        // With "web" active, "web\0x" must not collide with it in the file's unique owner index.
        _ = try await acquire(reopened, "blue", "web")
        _ = await refusal(naming: "owner", "owner with NUL beside its prefix") {
            _ = try await acquire(reopened, "blue", owner)
        }
        XCTAssertEqual(reopened.statistics().failedCommits, 0)
    }
}
