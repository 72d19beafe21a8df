import Foundation
import NetleaseCore
import NetleaseTesting
import XCTest

@testable import NetleaseStore

/// Shared fixture of the store tests: a fresh data directory on disk per test (removed in tearDown), a manual
/// clock, helpers to open and reopen the store, and read-back of the rows the store left in its SQLite file.
///
/// The contract suites (allocation, hosts, the reclaim race) use only `makeStore`, `reopen` and the `stored…`
/// read-backs, which go to the test's `backend`: SQLite here, PostgreSQL in subclasses that override
/// `makeBackend(for:)` (NetleasePostgresStoreTests), so one suite checks both stores.
class StoreTestCase: XCTestCase {
    /// Data directory of the test: `<tmp>/netlease-store-tests-<uuid>`.
    private(set) var directory: URL!
    private(set) var clock: ManualLeaseClock!
    /// Where the contract suites' stores keep their state.
    private(set) var backend: StoreTestBackend!
    /// Every store a test opened; closed in tearDown (closing twice is harmless).
    private var opened: [any LeaseStore] = []
    /// Every directory made by `makeTemporaryDirectory`; removed in tearDown.
    private var temporaryDirectories: [URL] = []

    /// The backend of this suite's stores.
    class func makeBackend(for test: StoreTestCase) throws -> StoreTestBackend { SQLiteTestBackend(test: test) }

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = makeTemporaryDirectory()
        clock = ManualLeaseClock()
        backend = try Self.makeBackend(for: self)
    }

    override func tearDownWithError() throws {
        for store in opened { store.close() }
        opened.removeAll()
        try backend?.tearDown()
        for url in temporaryDirectories where FileManager.default.fileExists(atPath: url.path) {
            try FileManager.default.removeItem(at: url)
        }
        temporaryDirectories.removeAll()
        try super.tearDownWithError()
    }

    /// A new, not yet existing directory under the system temporary directory, removed in tearDown.
    func makeTemporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-store-tests-\(UUID().uuidString)", isDirectory: true)
        temporaryDirectories.append(url)
        return url
    }

    var databasePath: String { directory.appendingPathComponent(SQLiteLeaseStore.fileName).path }

    // MARK: opening

    func openStore(in directory: URL? = nil, clock: LeaseClock? = nil) throws -> SQLiteLeaseStore {
        let store = try SQLiteLeaseStore(directory: (directory ?? self.directory).path, clock: clock ?? self.clock)
        opened.append(store)
        return store
    }

    /// Closes `store` and opens the same directory again with the test's clock: a coordinator restart.
    func reopen(_ store: SQLiteLeaseStore) throws -> SQLiteLeaseStore {
        store.close()
        return try openStore()
    }

    // MARK: the backend under test

    /// Opens the test's store in its backend: a new store object on the test's durable state each time.
    func makeStore(clock: LeaseClock? = nil) async throws -> any LeaseStore {
        let store = try await backend.makeStore(clock: clock ?? self.clock)
        opened.append(store)
        return store
    }

    /// Closes `store` and opens the backend's state again with the test's clock: a coordinator restart.
    func restart(_ store: any LeaseStore) async throws -> any LeaseStore {
        store.close()
        return try await makeStore()
    }

    // MARK: values

    func ip(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> IPv4Address {
        guard let address = IPv4Address(text) else {
            XCTFail("test fixture '\(text)' is not an address", file: file, line: line)
            return IPv4Address(0)
        }
        return address
    }

    func subnet(_ text: String) -> IPv4Subnet {
        guard let subnet = IPv4Subnet(text) else { preconditionFailure("test fixture '\(text)' is not a subnet") }
        return subnet
    }

    @discardableResult
    func createNetwork(
        _ store: any LeaseStore,
        _ name: String,
        _ cidr: String,
        leaseTTL: Int = NetworkSpec.defaultLeaseTTL,
        cooldown: Int = NetworkSpec.defaultCooldown
    ) async throws -> NetworkSpec {
        try await store.createNetwork(
            NetworkSpec(name: name, subnet: subnet(cidr), leaseTTL: leaseTTL, cooldown: cooldown)
        )
    }

    /// An admin lease (no host claim): static, never reclaimed with a host.
    func acquire(
        _ store: any LeaseStore,
        _ network: String,
        _ owner: String,
        at address: IPv4Address? = nil
    ) async throws -> Lease {
        try await store.acquire(network: network, owner: owner, claim: nil, address: address, ifname: "eth0")
    }

    // MARK: expectations

    /// Runs `body`, expecting it to throw a `NetleaseError` with `code`; returns that error.
    @discardableResult
    func expectError<T>(
        _ code: ErrorCode,
        _ what: String = "",
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () async throws -> T
    ) async -> NetleaseError? {
        do {
            let value = try await body()
            XCTFail("\(what): expected error \(code.rawValue), got \(value)", file: file, line: line)
            return nil
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("\(what): expected NetleaseError \(code.rawValue), got \(error)", file: file, line: line)
            return nil
        }
    }

    /// Synchronous variant for `SQLiteLeaseStore.init`.
    @discardableResult
    func expectInitError(
        _ code: ErrorCode,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () throws -> SQLiteLeaseStore
    ) -> NetleaseError? {
        do {
            let store = try body()
            opened.append(store)
            XCTFail("expected init to throw \(code.rawValue), it opened \(store.path)", file: file, line: line)
            return nil
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected NetleaseError \(code.rawValue), got \(error)", file: file, line: line)
            return nil
        }
    }

    func assertContains(
        _ text: String,
        _ parts: [String],
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        for part in parts {
            XCTAssertTrue(text.contains(part), "'\(text)' should contain '\(part)'", file: file, line: line)
        }
    }

    // MARK: reading the file back (only while no store holds it)

    struct StoredLease: Hashable, CustomStringConvertible {
        var network: String
        var address: IPv4Address
        var state: String
        var host: String
        var owner: String
        var isStatic: Bool
        var until: Millis

        var description: String { "\(network) \(address) \(state) owner=\(owner) host=\(host)" }
    }

    struct StoredHost: Hashable {
        var name: String
        var epoch: Int64
        var state: String
    }

    /// Every lease row the backend holds (for SQLite: opens the closed store's file, or the file at `path`, with
    /// a plain connection of the test's own).
    func storedLeases(
        at path: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws
        -> [StoredLease]
    {
        if path == nil, !(backend is SQLiteTestBackend) { return try backend.storedLeases() }
        return try withDatabase(at: path, file: file, line: line) { db in
            try db.query(
                "SELECT network, address, state, host, owner, static, until FROM leases ORDER BY network, address"
            ) { row in
                try StoredLease(
                    network: row.text(0),
                    address: IPv4Address(UInt32(truncatingIfNeeded: row.int(1))),
                    state: row.text(2),
                    host: row.text(3),
                    owner: row.text(4),
                    isStatic: row.int(5) != 0,
                    until: row.int(6)
                )
            }
        }
    }

    func storedHosts(
        at path: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws
        -> [StoredHost]
    {
        if path == nil, !(backend is SQLiteTestBackend) { return try backend.storedHosts() }
        return try withDatabase(at: path, file: file, line: line) { db in
            try db.query("SELECT name, epoch, state FROM hosts ORDER BY name") { row in
                try StoredHost(name: row.text(0), epoch: row.int(1), state: row.text(2))
            }
        }
    }

    func storedNetworkNames(at path: String? = nil) throws -> [String] {
        if path == nil, !(backend is SQLiteTestBackend) { return try backend.storedNetworkNames() }
        return try withDatabase(at: path) { db in
            try db.query("SELECT name FROM networks ORDER BY name") { try $0.text(0) }
        }
    }

    func withDatabase<T>(
        at path: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: (SQLiteDatabase) throws -> T
    ) throws -> T {
        let path = path ?? databasePath
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("no database file at \(path)", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        let db = try SQLiteDatabase(path: path)
        defer { db.close() }
        return try body(db)
    }

    func fileBytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func directoryListing(_ url: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }

    // MARK: the sqlite3 command-line shell

    static let sqliteShell = "/usr/bin/sqlite3"

    /// Runs `/usr/bin/sqlite3 <arguments>`; a test that needs the shell where it is not installed skips, or fails
    /// under CI (`missingCapability`). Call it outside `XCTAssert…`: a skip thrown inside an assertion's autoclosure
    /// is reported as a failure.
    @discardableResult
    func sqlite3(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let (status, text) = try sqlite3Run(arguments)
        XCTAssertEqual(status, 0, "sqlite3 \(arguments.joined(separator: " ")): \(text)", file: file, line: line)
        return text
    }

    /// The sqlite3 shell's exit status and output (stdout and stderr), for statements that are meant to fail.
    func sqlite3Run(_ arguments: [String]) throws -> (status: Int32, text: String) {
        guard FileManager.default.isExecutableFile(atPath: Self.sqliteShell) else {
            try missingCapability("\(Self.sqliteShell) is not installed; this test needs the sqlite3 shell")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.sqliteShell)
        process.arguments = ["-batch", "-bail"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus,
            String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        )
    }
}

/// Where a contract suite's stores keep their state, and how the test reads it back behind the store's back.
protocol StoreTestBackend: AnyObject {
    /// A new store object on the test's durable state (the same state every call).
    func makeStore(clock: LeaseClock) async throws -> any LeaseStore
    /// Every lease row, ordered by network and address.
    func storedLeases() throws -> [StoreTestCase.StoredLease]
    /// Every host row, ordered by name.
    func storedHosts() throws -> [StoreTestCase.StoredHost]
    func storedNetworkNames() throws -> [String]
    /// Removes the state (after every store was closed).
    func tearDown() throws
    /// Whether a store opened on this state gives every cooldown its full length again (a new term on a shared
    /// database: its clock need not agree with the last leader's); false: cooldowns end as written.
    var restartsCooldowns: Bool { get }
}

extension StoreTestBackend {
    var restartsCooldowns: Bool { false }
}

/// The SQLite store in the test's data directory; read-backs open its file directly.
final class SQLiteTestBackend: StoreTestBackend {
    private unowned let test: StoreTestCase

    init(test: StoreTestCase) { self.test = test }

    func makeStore(clock: LeaseClock) async throws -> any LeaseStore {
        try SQLiteLeaseStore(directory: test.directory.path, clock: clock)
    }

    func storedLeases() throws -> [StoreTestCase.StoredLease] { try test.storedLeases() }
    func storedHosts() throws -> [StoreTestCase.StoredHost] { try test.storedHosts() }
    func storedNetworkNames() throws -> [String] { try test.storedNetworkNames() }
    func tearDown() throws {}
}
