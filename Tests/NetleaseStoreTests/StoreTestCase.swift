import Foundation
import NetleaseCore
import NetleaseTesting
import XCTest

@testable import NetleaseStore

/// Shared fixture of the store tests: a fresh data directory on disk per test (removed in tearDown), a manual
/// clock, helpers to open and reopen the store, and read-back of the rows the store left in its SQLite file.
class StoreTestCase: XCTestCase {
    /// Data directory of the test: `<tmp>/netlease-store-tests-<uuid>`.
    private(set) var directory: URL!
    private(set) var clock: ManualLeaseClock!
    /// Every store a test opened; closed in tearDown (closing twice is harmless).
    private var opened: [SQLiteLeaseStore] = []
    /// Every directory made by `makeTemporaryDirectory`; removed in tearDown.
    private var temporaryDirectories: [URL] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = makeTemporaryDirectory()
        clock = ManualLeaseClock()
    }

    override func tearDownWithError() throws {
        for store in opened { store.close() }
        opened.removeAll()
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
        _ store: SQLiteLeaseStore, _ name: String, _ cidr: String, leaseTTL: Int = NetworkSpec.defaultLeaseTTL,
        cooldown: Int = NetworkSpec.defaultCooldown
    ) async throws -> NetworkSpec {
        try await store.createNetwork(
            NetworkSpec(name: name, subnet: subnet(cidr), leaseTTL: leaseTTL, cooldown: cooldown))
    }

    /// An admin lease (no host claim): static, never reclaimed with a host.
    func acquire(
        _ store: SQLiteLeaseStore, _ network: String, _ owner: String, at address: IPv4Address? = nil
    ) async throws -> Lease {
        try await store.acquire(network: network, owner: owner, claim: nil, address: address, ifname: "eth0")
    }

    // MARK: expectations

    /// Runs `body`, expecting it to throw a `NetleaseError` with `code`; returns that error.
    @discardableResult
    func expectError<T>(
        _ code: ErrorCode, _ what: String = "", file: StaticString = #filePath, line: UInt = #line,
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
        _ code: ErrorCode, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> SQLiteLeaseStore
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
        _ text: String, _ parts: [String], file: StaticString = #filePath, line: UInt = #line
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

    /// Opens the closed store's file with a plain connection of the test's own and reads every lease row.
    func storedLeases(at path: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws
        -> [StoredLease]
    {
        try withDatabase(at: path, file: file, line: line) { db in
            try db.query(
                "SELECT network, address, state, host, owner, static, until FROM leases ORDER BY network, address"
            ) { row in
                StoredLease(
                    network: row.text(0), address: IPv4Address(UInt32(truncatingIfNeeded: row.int(1))),
                    state: row.text(2), host: row.text(3), owner: row.text(4), isStatic: row.int(5) != 0,
                    until: row.int(6))
            }
        }
    }

    func storedHosts(at path: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws
        -> [StoredHost]
    {
        try withDatabase(at: path, file: file, line: line) { db in
            try db.query("SELECT name, epoch, state FROM hosts ORDER BY name") { row in
                StoredHost(name: row.text(0), epoch: row.int(1), state: row.text(2))
            }
        }
    }

    func storedNetworkNames(at path: String? = nil) throws -> [String] {
        try withDatabase(at: path) { db in try db.query("SELECT name FROM networks ORDER BY name") { $0.text(0) } }
    }

    func withDatabase<T>(
        at path: String? = nil, file: StaticString = #filePath, line: UInt = #line,
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
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(
            process.terminationStatus, 0, "sqlite3 \(arguments.joined(separator: " ")): \(text)", file: file,
            line: line)
        return text
    }
}
