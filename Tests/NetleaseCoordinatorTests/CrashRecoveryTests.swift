import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseWire
import XCTest

/// What clients were told: the only truth a crash test may hold the coordinator to.
actor AcknowledgementLog {
    private(set) var held: [String: IPv4Address] = [:]
    private(set) var released: Set<String> = []
    /// Releases sent but not acknowledged: the coordinator may or may not have applied them.
    private(set) var releasing: Set<String> = []
    private(set) var acknowledged = 0
    private var threshold: (count: Int, continuation: CheckedContinuation<Void, Never>)?

    func acquired(_ owner: String, _ address: IPv4Address) {
        held[owner] = address
        count()
    }

    func releaseSent(_ owner: String) {
        releasing.insert(owner)
    }

    func releasedOwner(_ owner: String) {
        releasing.remove(owner)
        held[owner] = nil
        released.insert(owner)
        count()
    }

    private func count() {
        acknowledged += 1
        if let threshold, acknowledged >= threshold.count {
            self.threshold = nil
            threshold.continuation.resume()
        }
    }

    /// Returns once `count` more acknowledgements arrived.
    func waitFor(more count: Int) async {
        let target = acknowledged + count
        guard acknowledged < target else { return }
        await withCheckedContinuation { threshold = (target, $0) }
    }
}

final class CrashRecoveryTests: XCTestCase {
    var directory: String!

    override func setUp() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("netlease-crash-\(UUID().uuidString)").path
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// SIGKILL the coordinator while 8 clients acquire and release; after each restart every acknowledged lease is
    /// present with its address, every acknowledged release is absent, and no address is held twice.
    func testAcknowledgedStateSurvivesKillNineWhileClientsWork() async throws {
        var child = try await ChildCoordinator.start(directory: directory)
        defer { child.cleanUp() }
        _ = try await child.connect {
            try await $0.createNetwork(NetworkSpec(name: "crash", subnet: IPv4Subnet("172.31.0.0/16")!, cooldown: 0))
        }
        let log = AcknowledgementLog()
        for cycle in 0..<3 {
            let endpoint = child.endpoint
            let secret = try child.secret
            let workers = Task {
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<8 {
                        group.addTask {
                            try? await NetleaseConnection.connect(to: endpoint, secret: secret) { connection in
                                for index in 0..<100_000 {
                                    let owner = "c\(cycle)-w\(worker)-\(index)"
                                    let lease = try await connection.acquire(AcquireRequest(network: "crash", owner: owner))
                                    await log.acquired(owner, lease.address)
                                    if index % 3 == 2 {
                                        let previous = "c\(cycle)-w\(worker)-\(index - 1)"
                                        await log.releaseSent(previous)
                                        try await connection.release(ReleaseRequest(network: "crash", owner: previous))
                                        await log.releasedOwner(previous)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            await log.waitFor(more: 400)
            child.kill9()
            await workers.value
            child.cleanUp()
            child = try await ChildCoordinator.start(directory: directory)
            try await verify(child, against: log, cycle: cycle)
        }
        XCTAssertEqual(child.terminate(), 0, "graceful stop failed: \(child.stderrText)")
    }

    private func verify(_ child: ChildCoordinator, against log: AcknowledgementLog, cycle: Int) async throws {
        let leases = try await child.connect { try await $0.leases(.init(network: "crash")) }
        let held = await log.held
        let released = await log.released
        let releasing = await log.releasing
        XCTAssertEqual(Set(leases.map(\.address)).count, leases.count, "cycle \(cycle): an address is held twice")
        XCTAssertEqual(Set(leases.map(\.owner)).count, leases.count, "cycle \(cycle): an owner holds two leases")
        let byOwner = Dictionary(uniqueKeysWithValues: leases.map { ($0.owner, $0.address) })
        var lost = 0
        for (owner, address) in held where byOwner[owner] != address && !releasing.contains(owner) { lost += 1 }
        XCTAssertEqual(lost, 0, "cycle \(cycle): \(lost) acknowledged leases lost or moved")
        let resurrected = released.filter { byOwner[$0] != nil }
        XCTAssertEqual(resurrected, [], "cycle \(cycle): acknowledged releases came back")
        XCTAssertGreaterThanOrEqual(held.count, 1)
    }

    func testSecondCoordinatorOnTheSameDataDirectoryRefusesToStart() async throws {
        let first = try await ChildCoordinator.start(directory: directory)
        defer { first.cleanUp() }
        do {
            let second = try await ChildCoordinator.start(directory: directory)
            second.cleanUp()
            XCTFail("a second coordinator started on a data directory in use")
        } catch let error as NetleaseError {
            XCTAssertTrue(error.message.contains("in use by another process"), error.message)
        }
    }

    func testForeignDatabaseFileIsRefusedAndLeftUntouched() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/netlease.db"
        let garbage = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        FileManager.default.createFile(atPath: path, contents: garbage)
        do {
            let child = try await ChildCoordinator.start(directory: directory)
            child.cleanUp()
            XCTFail("the coordinator started on a foreign file")
        } catch let error as NetleaseError {
            XCTAssertTrue(error.message.contains("not an SQLite database"), error.message)
        }
        XCTAssertEqual(FileManager.default.contents(atPath: path), garbage, "the foreign file was changed")
    }

    func testSecretFileReadableByOthersIsRefused() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/cluster-secret"
        FileManager.default.createFile(atPath: path, contents: Data("s3cret\n".utf8),
                                       attributes: [.posixPermissions: 0o644])
        do {
            let child = try await ChildCoordinator.start(directory: directory)
            child.cleanUp()
            XCTFail("the coordinator accepted a world-readable secret")
        } catch let error as NetleaseError {
            XCTAssertTrue(error.message.contains("chmod 600"), error.message)
        }
    }
}
