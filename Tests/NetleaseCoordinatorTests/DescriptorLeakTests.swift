import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseWire
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// No descriptor outlives what opened it: a coordinator started and stopped (its store, listener, connections and
/// event loops), many clients connecting and leaving (authenticated, watching, vanishing mid-line, refused), a store
/// opened and closed on its own, the real executable started and stopped. A coordinator runs for months; a
/// descriptor lost per connection ends it with EMFILE.
final class DescriptorLeakTests: XCTestCase {
    /// This process's open descriptors: number → what it is (`socket:[inode]`, a path, `anon_inode:[eventpoll]` …).
    static func openDescriptors() throws -> [Int32: String] {
        var result: [Int32: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            guard let fd = Int32(name) else { continue }
            // The listing's own descriptor is gone by now: readlink fails for it, and it is left out.
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)") {
                result[fd] = target
            }
        }
        return result
    }

    /// The descriptors open now that were not open (as the same thing) in `before`.
    static func opened(since before: [Int32: String]) throws -> [Int32: String] {
        try openDescriptors().filter { before[$0.key] != $0.value }
    }

    func testACoordinatorsWholeLifeLeavesNoDescriptorOpen() async throws {
        // Once first: what is made once per process and kept (NIO's shared event loops, the executable's path) is
        // not a leak.
        try await lifecycle(round: 0)
        let before = try Self.openDescriptors()
        for round in 1...3 { try await lifecycle(round: round) }
        // Closing is synchronous in every path here, but a channel's close may finish on its event loop just after
        // the call that asked for it returned: wait for that, with a deadline.
        let deadline = ContinuousClock.now + .seconds(10)
        var left = try Self.opened(since: before)
        while !left.isEmpty && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            left = try Self.opened(since: before)
        }
        XCTAssertEqual(
            left.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" },
            [],
            "descriptors opened by three coordinator lifecycles are still open"
        )
    }

    /// One coordinator's life with 60 client connections of every kind, a store on its own and the real executable.
    private func lifecycle(round: Int) async throws {
        let harness = try await CoordinatorHarness.start(maxConnections: 40)
        do {
            try await harness.connect { c in
                _ = try await c.createNetwork(NetworkSpec(name: "blue", subnet: IPv4Subnet("10.77.0.0/24")!))
            }
            // Concurrent authenticated clients, each with requests, each closing its connection.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<30 {
                    group.addTask {
                        try await harness.connect { c in
                            let owner = "fd-\(round)-\(index)"
                            _ = try await c.acquire(AcquireRequest(network: "blue", owner: owner))
                            _ = try await c.release(ReleaseRequest(network: "blue", owner: owner))
                        }
                    }
                }
                try await group.waitForAll()
            }
            // A watcher that leaves while the coordinator still runs.
            try await harness.connect { c in
                let (hosts, _) = try await c.watch()
                XCTAssertEqual(hosts, [])
            }
            // Raw clients: one vanishes mid-line, one sends an unknown verb and is answered, one never speaks.
            for text in ["ACQ", "FROB x=1\n", ""] {
                let raw = try RawLineClient(port: harness.endpoint.port)
                XCTAssertNotNil(try raw.readLine(), "no greeting")
                if !text.isEmpty { try raw.send(text) }
                if text.hasSuffix("\n") { XCTAssertEqual(try raw.readLine()?.hasPrefix("ERR "), true) }
            }
            // Over the connection cap: 50 held where 40 are allowed, so at least 10 are refused and closed (more
            // when the server has not yet counted an earlier connection's end).
            let held = try (0..<50).map { _ in try RawLineClient(port: harness.endpoint.port) }
            let first = try held.map { try XCTUnwrap(try $0.readLine(), "neither greeted nor refused") }
            let refused = first.filter { $0.hasPrefix("ERR overloaded") }.count
            XCTAssertGreaterThanOrEqual(refused, 10, "over the cap: \(first)")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()

        // A store on its own, opened and closed twice on one directory (a restart).
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("netlease-fd-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for _ in 0..<2 {
            let store = try SQLiteLeaseStore(directory: directory)
            _ = try await store.networks()
            store.close()
        }

        // The real executable: its pipes end with it.
        let child = try await CoordinatorProcess.start(directory: directory + "-child")
        defer { try? FileManager.default.removeItem(atPath: directory + "-child") }
        try await child.connect { _ = try await $0.networks() }
        XCTAssertEqual(child.stop(), 0, "the coordinator did not stop cleanly: \(child.log)")
        child.cleanUp()
    }
}
