import Foundation
import HostNetwork
import XCTest

@testable import NetleaseLab

#if canImport(Glibc)
import Glibc
#endif

/// The sweeper on the real `ip netns`: it removes the namespaces and processes of labs whose owner has ended — a pid
/// that is gone, or a pid now held by another process — and leaves alone a lab whose owner still runs, a lab kept on
/// purpose and a namespace nobody recorded. The "labs" here are registry records written by the test with chosen
/// owners, each with namespaces of its id.
final class LabSweeperTests: NamespaceTestCase {
    private var made: [String] = []
    private var records: [String] = []
    private var children: [ChildProcess] = []

    override func tearDown() async throws {
        for child in children where child.isRunning { _ = child.stop(grace: .seconds(2)) }
        for name in made where FileManager.default.fileExists(atPath: "/var/run/netns/\(name)") {
            _ = try? await ProcessCommandRunner().run(["ip", "netns", "del", name])
        }
        for id in records { LabRegistry.release(id: id) }
        try await super.tearDown()
    }

    /// A fresh lab id recorded with `owner` (and `kept`), its directory `directory`.
    private func record(owner: LabRegistry.Owner, kept: Bool = false, directory: String = "") throws -> String {
        for _ in 0..<64 {
            let id = String(UInt32.random(in: 0x1000...0xFFFF), radix: 16)
            guard LabRegistry.reserve(id: id, labDirectory: directory) == .reserved else { continue }
            records.append(id)
            let entry = LabRegistry.Entry(id: id, owner: owner, labDirectory: directory, kept: kept)
            try Data(LabRegistry.render(entry).utf8).write(to: URL(fileURLWithPath: LabRegistry.path(of: id)))
            return id
        }
        throw NSError(domain: "LabSweeperTests", code: 1, userInfo: [NSLocalizedDescriptionKey: "no free lab id"])
    }

    private func namespace(_ name: String) async throws {
        _ = try await ProcessCommandRunner().run(["ip", "netns", "add", name])
        made.append(name)
    }

    private func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: "/var/run/netns/\(name)") }

    func testRemovesOnlyLabsWhoseOwnerEnded() async throws {
        // An owner that has ended: a child started and reaped.
        let ended = try ChildProcess(executable: "/bin/sleep", arguments: ["30"])
        let endedStart = try XCTUnwrap(LabRegistry.startTime(of: ended.pid))
        let endedOwner = LabRegistry.Owner(pid: ended.pid, startTime: endedStart)
        ended.signal(SIGKILL)
        _ = ended.wait()
        XCTAssertFalse(endedOwner.isAlive)
        // A pid that runs, but is another process than the one recorded: its start time differs.
        let me = LabRegistry.Owner.current
        XCTAssertTrue(me.isAlive)
        let reused = LabRegistry.Owner(pid: me.pid, startTime: me.startTime + 1)
        XCTAssertFalse(reused.isAlive)

        let labDirectory = FileManager.default.temporaryDirectory.path + "/netlease-lab-"
        let dead = try record(owner: endedOwner)
        let deadDirectory = labDirectory + dead
        try FileManager.default.createDirectory(atPath: deadDirectory, withIntermediateDirectories: true)
        try Data("log".utf8).write(to: URL(fileURLWithPath: deadDirectory + "/agent.log"))
        try Data(
            LabRegistry.render(
                LabRegistry.Entry(
                    id: dead,
                    owner: endedOwner,
                    labDirectory: deadDirectory,
                    kept: false
                )
            ).utf8
        )
        .write(to: URL(fileURLWithPath: LabRegistry.path(of: dead)))
        let reusedID = try record(owner: reused)
        let live = try record(owner: me)
        let kept = try record(owner: endedOwner, kept: true)
        var unknown = ""
        repeat {
            unknown = String(UInt32.random(in: 0x1000...0xFFFF), radix: 16)
        } while LabRegistry.entry(id: unknown) != nil || exists("nl\(unknown)-h1")

        for name in [
            "nl\(dead)-h1", "nl\(dead)-h1c1", "nl\(reusedID)-ul", "nl\(live)-h1", "nl\(kept)-h1",
            "nl\(unknown)-h1",
        ] {
            try await namespace(name)
        }
        let deadProbe = "nlprobe-\(endedOwner.pid)-\(endedOwner.startTime)-1"
        let liveProbe = "nlprobe-\(me.pid)-\(me.startTime)-77"
        try await namespace(deadProbe)
        try await namespace(liveProbe)
        // A process left running inside the dead lab, as an agent of a crashed run would be.
        let orphan = try ChildProcess(
            executable: try ProcessCommandRunner().resolve("ip"),
            arguments: ["netns", "exec", "nl\(dead)-h1", "sleep", "300"]
        )
        children.append(orphan)
        let entered = await eventually {
            let pids = (try? await ProcessCommandRunner().run(["ip", "netns", "pids", "nl\(dead)-h1"]).stdout) ?? ""
            return pids.split(whereSeparator: \.isWhitespace).contains(Substring(String(orphan.pid)))
        }
        XCTAssertTrue(entered, "the orphan never ran inside the dead lab's namespace")

        let report = await LabSweeper.sweep()

        for name in ["nl\(dead)-h1", "nl\(dead)-h1c1", "nl\(reusedID)-ul", deadProbe] {
            XCTAssertFalse(exists(name), "\(name) of an ended owner survived the sweep")
        }
        for name in ["nl\(live)-h1", "nl\(kept)-h1", "nl\(unknown)-h1", liveProbe] {
            XCTAssertTrue(exists(name), "\(name) was swept although its owner runs, it is kept, or has no record")
        }
        XCTAssertEqual(
            orphan.wait(until: .now + .seconds(5)),
            .signalled(SIGKILL),
            "the process inside the dead lab was not killed"
        )
        XCTAssertFalse(FileManager.default.fileExists(atPath: deadDirectory), "the dead lab's directory survived")
        XCTAssertNil(LabRegistry.entry(id: dead), "the dead lab's record survived")
        XCTAssertNil(LabRegistry.entry(id: reusedID))
        XCTAssertNotNil(LabRegistry.entry(id: live))
        XCTAssertNotNil(LabRegistry.entry(id: kept))
        XCTAssertTrue(report.unknownNamespaces.contains("nl\(unknown)-h1"), "\(report)")
    }

    /// A lab made by this process is recorded with this process as owner, marked when kept, and forgotten when
    /// destroyed.
    func testALabRecordsItsOwnerUntilDestroyed() async throws {
        let entry = try XCTUnwrap(LabRegistry.entry(id: lab.id), "the test's own lab is not recorded")
        XCTAssertEqual(entry.owner, LabRegistry.Owner.current)
        XCTAssertEqual(entry.labDirectory, lab.directory)
        XCTAssertFalse(entry.kept)
        lab.keep()
        XCTAssertEqual(LabRegistry.entry(id: lab.id)?.kept, true)
        _ = try await lab.addNamespace(role: "x")
        await lab.destroy()
        XCTAssertNil(LabRegistry.entry(id: lab.id), "a destroyed lab is still recorded")
    }
}
