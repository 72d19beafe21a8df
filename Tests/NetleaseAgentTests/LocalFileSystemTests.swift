import Foundation
import NetleaseCore
import XCTest

@testable import NetleaseAgent

final class LocalFileSystemTests: XCTestCase {
    private let files = LocalFileSystem()
    private var directory = ""

    override func setUpWithError() throws {
        directory =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-files-\(UUID().uuidString.prefix(8))").path
        try files.createDirectory(directory, mode: 0o700)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    private func mode(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try XCTUnwrap(attributes[.posixPermissions] as? Int)
    }

    private func entries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    func testWritesAndReplacesWithExactlyTheRequestedMode() throws {
        let target = path("leases.json")
        try files.writeAtomically(Data("first".utf8), to: target, mode: 0o600)
        XCTAssertEqual(files.contents(of: target), Data("first".utf8))
        XCTAssertEqual(try mode(of: target), 0o600)
        XCTAssertEqual(try mode(of: directory), 0o700)

        // A replacement takes the mode asked for, whatever the old file had, and leaves nothing beside it.
        try files.setMode(0o644, of: target)
        try files.writeAtomically(Data("second".utf8), to: target, mode: 0o600)
        XCTAssertEqual(files.contents(of: target), Data("second".utf8))
        XCTAssertEqual(try mode(of: target), 0o600)
        try files.writeAtomically(Data(), to: target, mode: 0o640)
        XCTAssertEqual(files.contents(of: target), Data())
        XCTAssertEqual(try mode(of: target), 0o640)
        XCTAssertEqual(try entries(), ["leases.json"])
    }

    func testAFailedWriteKeepsTheOldContentAndLeavesNoTemporaryFile() throws {
        // A name that fits NAME_MAX while its temporary sibling does not: creating the temporary file fails the same
        // way for root as for anyone, before anything is written.
        let long = String(repeating: "l", count: 250)
        let target = path(long)
        XCTAssertTrue(FileManager.default.createFile(atPath: target, contents: Data("old".utf8)))
        XCTAssertThrowsError(try files.writeAtomically(Data("new".utf8), to: target, mode: 0o600)) {
            XCTAssertEqual(($0 as? NetleaseError)?.code, .storage, "\($0)")
        }
        XCTAssertEqual(files.contents(of: target), Data("old".utf8))
        XCTAssertEqual(try entries(), [long])
    }

    func testAFailedRenameRemovesTheTemporaryFile() throws {
        // The temporary file is written and synced, then the rename fails: the target is a non-empty directory.
        let target = path("state")
        try files.createDirectory((target as NSString).appendingPathComponent("inside"), mode: 0o700)
        XCTAssertThrowsError(try files.writeAtomically(Data("new".utf8), to: target, mode: 0o600)) {
            XCTAssertTrue("\($0)".contains("cannot replace"), "\($0)")
        }
        XCTAssertEqual(try entries(), ["state"])
    }

    func testLeaseFileKeepsMemoryAndDiskAlikeWhenAWriteFails() throws {
        let leases = try LocalLeaseFile(directory: directory, files: files)
        let web = LocalLease(
            network: "prod",
            owner: "web",
            address: IPv4Address(172, 30, 0, 2),
            prefix: 24,
            ifname: "eth0",
            netns: nil
        )
        try leases.put(web)
        XCTAssertEqual(try mode(of: leases.path), 0o600)
        // Make the next replacement fail: the path becomes a non-empty directory.
        try FileManager.default.removeItem(atPath: leases.path)
        try files.createDirectory((leases.path as NSString).appendingPathComponent("x"), mode: 0o700)
        let api = LocalLease(
            network: "prod",
            owner: "api",
            address: IPv4Address(172, 30, 0, 3),
            prefix: 24,
            ifname: "eth0",
            netns: nil
        )
        XCTAssertThrowsError(try leases.put(api))
        XCTAssertThrowsError(try leases.remove(network: "prod", owner: "web"))
        XCTAssertEqual(leases.all, [web], "a lease that was not written must not be remembered, nor one forgotten")
    }
}
