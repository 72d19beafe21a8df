import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseStore

/// A released address stays unusable for its whole cooldown, whatever happens to it meanwhile: a reservation and
/// its removal, a restart, or the deletion of its network.
final class StoreCooldownTests: StoreTestCase {
    func testReserveThenUnreserveKeepsTheCooldownAcrossARestart() async throws {
        let store = try openStore()
        try await createNetwork(store, "pair", "10.8.0.0/30", cooldown: 60)  // hosts .1 and .2
        let a = try await acquire(store, "pair", "a")
        _ = try await acquire(store, "pair", "b")
        let released = try await store.release(network: "pair", owner: "a", address: nil, claim: nil)
        clock.advance(seconds: 1)
        _ = try await store.reserve(network: "pair", address: a.address, note: "hold")

        let reopened = try reopen(store)
        clock.advance(seconds: 1)
        try await reopened.unreserve(network: "pair", address: a.address)
        await expectError(.poolExhausted, "the address is still cooling") { try await acquire(reopened, "pair", "c") }

        let again = try reopen(reopened)
        await expectError(.poolExhausted, "still cooling after a restart") { try await acquire(again, "pair", "c") }
        clock.advance(seconds: 58)
        XCTAssertEqual(clock.now(), released?.until)
        let reused = try await acquire(again, "pair", "c")
        XCTAssertEqual(reused.address, a.address)
    }

    func testNetworkWithCoolingAddressesIsNotDeletedUntilTheyCool() async throws {
        let store = try openStore()
        try await createNetwork(store, "temp", "10.50.0.0/24", cooldown: 60)
        _ = try await acquire(store, "temp", "c1")
        _ = try await store.release(network: "temp", owner: "c1", address: nil, claim: nil)
        await expectError(.conflict, "delete while an address cools") { try await store.deleteNetwork("temp") }
        // Re-created at once over the same subnet, the address would be free for anyone.
        clock.advance(seconds: 60)
        try await store.deleteNetwork("temp")
        let names = try await store.networks().map(\.spec.name)
        XCTAssertEqual(names, [])
    }
}
