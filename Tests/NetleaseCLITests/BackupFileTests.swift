import Foundation
import NetleaseCore
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `netlease backup --out F`: the file holds the whole store (every lease, the store id, the host credentials'
/// hashes), so it is never readable by others, not even while it is written, and nothing already at F is replaced.
final class BackupFileTests: XCTestCase {
    private var coordinator: CLICoordinator?
    private var scratch: String!

    override func setUpWithError() throws {
        scratch =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-backup-file-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        await coordinator?.stop()
        coordinator = nil
        try? FileManager.default.removeItem(atPath: scratch)
    }

    private func path(_ name: String) -> String { (scratch as NSString).appendingPathComponent(name) }

    private func startCoordinator() async throws -> CLICoordinator {
        let started = try await CLICoordinator.start()
        coordinator = started
        let created = try await started.netlease(["network", "create", "prod", "--subnet", "172.30.0.0/24"])
        XCTAssertEqual(created.status, 0, created.stderr)
        return started
    }

    /// Every name created or moved into the directory, and every change of attributes there, while the backup
    /// ran: the kernel queues them, so reading after the command exited misses none. A file written under a
    /// temporary name and renamed, or chmod'ed after its data was in it, shows here.
    func testTheFileIsCreated0600WithItsDataAndNothingElseAppears() async throws {
        let started = try await startCoordinator()
        let directory = path("backups")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let watch = try DirectoryEvents(directory)
        defer { watch.close() }
        let previous = umask(0o022)
        defer { umask(previous) }
        let out = (directory as NSString).appendingPathComponent("netlease.db")

        let run = try await started.netlease(["backup", "--out", out])
        XCTAssertEqual(run.status, 0, run.stderr)

        var info = stat()
        XCTAssertEqual(lstat(out, &info), 0)
        XCTAssertEqual(info.st_mode & 0o7777, 0o600, "mode \(String(info.st_mode & 0o7777, radix: 8))")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["netlease.db"])
        XCTAssertEqual(
            try watch.read(),
            ["created netlease.db"],
            "the backup is created under its own name with its final mode, never written elsewhere first"
        )
    }

    /// An existing file, a symbolic link to one and a link that points nowhere are each refused with an error
    /// naming the path, before the coordinator is asked, and left exactly as they were.
    func testAnythingAtThePathIsRefusedAndLeftAsItWas() async throws {
        let started = try await startCoordinator()
        let existing = path("existing.db")
        try Data("keep".utf8).write(to: URL(fileURLWithPath: existing))
        let linkToFile = path("link-to-file.db")
        try FileManager.default.createSymbolicLink(atPath: linkToFile, withDestinationPath: existing)
        let dangling = path("dangling.db")
        let nowhere = path("nowhere.db")
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: nowhere)

        for out in [existing, linkToFile, dangling] {
            let run = try await started.netlease(["backup", "--out", out])
            XCTAssertEqual(run.status, 1, "\(out): \(run.stderr)")
            XCTAssertEqual(run.stdout, "")
            XCTAssertEqual(run.stderr, "error: bad-request: \(out) exists; it is never overwritten (nothing written)\n")
        }
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "keep")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: linkToFile), existing)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: dangling), nowhere)
        XCTAssertFalse(FileManager.default.fileExists(atPath: nowhere), "the link was followed")
        XCTAssertEqual(
            Set(try FileManager.default.contentsOfDirectory(atPath: scratch)),
            ["existing.db", "link-to-file.db", "dangling.db"]
        )
    }

    /// The file is made before the coordinator is asked; when the backup fails, the empty file goes again.
    func testAFailedBackupLeavesNoFile() async throws {
        let out = path("netlease.db")
        let run = try await BuiltExecutable.run("netlease", ["backup", "--out", out, "--coordinator", "127.0.0.1:1"])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("error: unavailable: "), run.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch), [])
    }
}

/// An inotify watch on one directory: names created or moved in, and attribute changes.
private final class DirectoryEvents {
    private var descriptor: Int32

    init(_ directory: String) throws {
        descriptor = inotify_init1(Int32(IN_NONBLOCK) | Int32(IN_CLOEXEC))
        guard descriptor >= 0 else { throw NetleaseError(.storage, "inotify_init1: \(errno)") }
        let mask = UInt32(IN_CREATE) | UInt32(IN_MOVED_TO) | UInt32(IN_ATTRIB)
        guard inotify_add_watch(descriptor, directory, mask) >= 0 else {
            close()
            throw NetleaseError(.storage, "inotify_add_watch \(directory): \(errno)")
        }
    }

    /// Every queued event, in order, as "created NAME", "moved NAME" or "attributes NAME".
    func read() throws -> [String] {
        var events: [String] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EAGAIN { return events }
                throw NetleaseError(.storage, "reading inotify events: \(errno)")
            }
            var offset = 0
            while offset + 16 <= count {
                let (mask, length) = buffer.withUnsafeBytes { bytes in
                    (
                        bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                        Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    )
                }
                let name = String(
                    decoding: buffer[(offset + 16)..<(offset + 16 + length)].prefix { $0 != 0 },
                    as: UTF8.self
                )
                if mask & UInt32(IN_CREATE) != 0 { events.append("created \(name)") }
                if mask & UInt32(IN_MOVED_TO) != 0 { events.append("moved \(name)") }
                if mask & UInt32(IN_ATTRIB) != 0 { events.append("attributes \(name)") }
                offset += 16 + length
            }
        }
    }

    func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }
}
