import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
import Synchronization
import XCTest

/// A JOIN its connection sent just before `host remove` closed it must not bring the removed host back: the
/// connection is closed, but the request it already sent is still on its way to the store.
final class HostRemovalRaceTests: XCTestCase {
    func testAJoinInFlightDuringTheRemovalDoesNotBringTheHostBack() async throws {
        let held = HeldJoins()
        let harness = try await CoordinatorHarness.start { HeldJoinStore(base: $0, held: held) }
        do {
            try await harness.connect { admin in
                _ = try await admin.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
            }
            let credential = try HostCredential.generate(for: "h1")
            let hash = SecretHash(hashing: credential.text).stored
            _ = try await harness.connect { try await $0.setHostCredential(host: "h1", hash: hash) }
            let agent = try RawLineClient(port: harness.endpoint.port)
            _ = try agent.readLine()
            try agent.send("AUTH secret=\(credential.text)\n")
            XCTAssertEqual(try agent.readLine(), "OK role=host host=h1")

            try agent.send("JOIN host=h1 underlay=10.0.0.1 networks=prod\n")
            try await withDeadline(.seconds(10), "the JOIN reaching the store") { await held.arrived() }
            let removal = Task { try await harness.connect { try await $0.removeHost("h1") } }
            // The removal has revoked the credential and closed the agent's connection; the JOIN is still held.
            XCTAssertTrue(agent.isClosedByPeer(), "the removed host's connection stayed open")
            held.release()
            let removed = try await withDeadline(.seconds(10), "the removal") { try await removal.value }
            XCTAssertEqual(removed.revoked, true)

            let hosts = try await harness.connect { try await $0.hosts() }
            XCTAssertEqual(hosts.map(\.name), [], "the JOIN sent before the removal brought h1 back")
            let leases = try await harness.connect {
                try await $0.leases(Ledger.LeaseFilter(network: "prod", host: "h1", state: .active))
            }
            XCTAssertEqual(leases.map(\.address.description), [], "h1's bridge address is held again")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}

/// JOINs held back until the test releases them (or until a host removal reaches the store: then it goes first,
/// as it would when nothing orders the two).
private final class HeldJoins: Sendable {
    private struct State {
        var arrived = false
        var arrivalWaiters: [CheckedContinuation<Void, Never>] = []
        var held: [@Sendable () -> Void] = []
        var released = false
    }

    private let state = Mutex(State())

    func hold(_ forward: @escaping @Sendable () -> Void) {
        let (waiters, now) = state.withLock { s -> ([CheckedContinuation<Void, Never>], Bool) in
            s.arrived = true
            defer { s.arrivalWaiters = [] }
            if s.released { return (s.arrivalWaiters, true) }
            s.held.append(forward)
            return (s.arrivalWaiters, false)
        }
        for waiter in waiters { waiter.resume() }
        if now { forward() }
    }

    func arrived() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.arrived { return true }
                s.arrivalWaiters.append(waiter)
                return false
            }
            if now { waiter.resume() }
        }
    }

    func release() {
        let held = state.withLock { s -> [@Sendable () -> Void] in
            s.released = true
            defer { s.held = [] }
            return s.held
        }
        for forward in held { forward() }
    }
}

/// The harness's SQLite store with JOINs held by `held`; every other operation goes straight through.
private final class HeldJoinStore: LeaseStore, HostCredentialStore {
    let base: SQLiteLeaseStore
    let held: HeldJoins

    init(base: SQLiteLeaseStore, held: HeldJoins) {
        self.base = base
        self.held = held
    }

    func submit(_ operation: StoreOperation) {
        switch operation {
        case .join:
            held.hold { [base] in base.submit(operation) }
        case .removeHost:
            base.submit(operation)
            held.release()
        default:
            base.submit(operation)
        }
    }

    func statistics() -> StoreStatistics { base.statistics() }
    func identity() -> StoreIdentity { base.identity() }
    var backend: StoreBackend { base.backend }
    func backup(to path: String) async throws -> StoreIdentity { try await base.backup(to: path) }
    func close() {}

    func hostCredential(_ host: String) async throws -> StoredHostCredential? { try await base.hostCredential(host) }
    func storeHostCredential(_ credential: StoredHostCredential) async throws -> Bool {
        try await base.storeHostCredential(credential)
    }
    func revokeHostCredential(_ host: String) async throws -> Bool { try await base.revokeHostCredential(host) }
    func hostCredentials() async throws -> [StoredHostCredential] { try await base.hostCredentials() }
}
