import ArgumentParser
import Foundation
import XCTest

@testable import netlease

/// `netlease agent --config FILE`: the agent.env file read by the agent itself, so the unit needs no shell.
final class AgentConfigFileTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("agent-config-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func write(_ text: String) throws -> String {
        let path = directory + "/agent.env"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testTheShippedExampleIsAValidFile() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/agent.env.example").path
        let command = try parse(["agent", "--config", example], as: Netlease.AgentCommand.self)
        XCTAssertEqual(
            try command.settings(),
            .init(
                coordinators: "10.0.0.10:7420",
                secretFile: "/etc/netlease/host-credential",
                host: "host1",
                underlay: "10.0.0.11",
                networks: ["prod"]
            )
        )
    }

    func testEveryKeyQuotesCommentsAndSeparators() throws {
        let path = try write(
            """
            # a comment
              NETLEASE_COORDINATORS = 10.0.0.9:7420 10.0.0.10:7420,10.0.0.11:7420

            NETLEASE_HOST="host 1"
            NETLEASE_UNDERLAY='10.0.0.21'
            NETLEASE_NETWORKS=prod  dev,lab
            NETLEASE_SECRET_FILE=/etc/netlease/other-secret
            NETLEASE_AGENT_ARGS=--socket-group netlease --log-level debug
            """
        )
        let file = try AgentConfigFile.load(path: path)
        XCTAssertEqual(
            file,
            AgentConfigFile(
                coordinators: "10.0.0.9:7420,10.0.0.10:7420,10.0.0.11:7420",
                host: "host 1",
                underlay: "10.0.0.21",
                networks: ["prod", "dev", "lab"],
                secretFile: "/etc/netlease/other-secret"
            )
        )
    }

    func testTheCommandLineWins() throws {
        let path = try write(
            """
            NETLEASE_COORDINATORS=10.0.0.9:7420
            NETLEASE_HOST=host1
            NETLEASE_UNDERLAY=10.0.0.21
            NETLEASE_NETWORKS=prod dev
            """
        )
        let fromFile = try parse(["agent", "--config", path], as: Netlease.AgentCommand.self)
        XCTAssertEqual(
            try fromFile.settings(),
            .init(
                coordinators: "10.0.0.9:7420",
                secretFile: "/etc/netlease/cluster-secret",
                host: "host1",
                underlay: "10.0.0.21",
                networks: ["prod", "dev"]
            )
        )
        let overridden = try parse(
            [
                "agent", "--config", path, "--host", "host2", "--network", "lab", "--coordinator", "10.0.0.1:7420",
                "--secret-file", "/tmp/s", "--underlay", "10.0.0.22",
            ],
            as: Netlease.AgentCommand.self
        )
        XCTAssertEqual(
            try overridden.settings(),
            .init(
                coordinators: "10.0.0.1:7420",
                secretFile: "/tmp/s",
                host: "host2",
                underlay: "10.0.0.22",
                networks: ["lab"]
            )
        )
    }

    func testAnEmptySecretFileMeansNone() throws {
        let path = try write(
            "NETLEASE_HOST=h\nNETLEASE_UNDERLAY=10.0.0.1\nNETLEASE_NETWORKS=p\nNETLEASE_SECRET_FILE=\n"
        )
        XCTAssertNil(try parse(["agent", "--config", path], as: Netlease.AgentCommand.self).settings().secretFile)
    }

    /// A file written with CRLF line endings: "\r\n" is one Character in Swift, so splitting on "\n" read the file
    /// as one line — a first comment line made the agent ignore every key silently (its host credential too).
    func testCRLFLineEndingsReadEveryKey() throws {
        let file = try AgentConfigFile.parse(
            "# netlease agent\r\nNETLEASE_HOST=h1\r\nNETLEASE_NETWORKS=prod\r\nNETLEASE_SECRET_FILE=/etc/netlease/h1\r\n",
            path: "agent.env"
        )
        XCTAssertEqual(file.host, "h1")
        XCTAssertEqual(file.networks, ["prod"])
        XCTAssertEqual(file.secretFile, "/etc/netlease/h1")
        XCTAssertThrowsError(try AgentConfigFile.parse("NETLEASE_HOST=h\r\nNETLEASE_NETWORK=p\r\n", path: "f")) {
            XCTAssertTrue("\($0)".contains("line 2: unknown key 'NETLEASE_NETWORK'"), "\($0)")
        }
    }

    func testMistakesAreRefusedWithTheirLine() throws {
        let misspelt = try write("NETLEASE_HOST=h\nNETLEASE_NETWORK=prod\n")
        assertRefused(["agent", "--config", misspelt], "--config \(misspelt) line 2: unknown key 'NETLEASE_NETWORK'")
        let noEquals = try write("NETLEASE_HOST h\n")
        assertRefused(
            ["agent", "--config", noEquals],
            "--config \(noEquals) line 1: 'NETLEASE_HOST h' is not KEY=value"
        )
        let incomplete = try write("NETLEASE_HOST=h\nNETLEASE_UNDERLAY=10.0.0.1\n")
        assertRefused(
            ["agent", "--config", incomplete],
            "give at least one --network (or NETLEASE_NETWORKS in --config)"
        )
        assertRefused(["agent", "--config", directory + "/absent"], "--config \(directory)/absent cannot be read")
        // A bad value from the file is named by its key and the file; the command line's by its option.
        let badUnderlay = try write("NETLEASE_HOST=h\nNETLEASE_UNDERLAY=10.0.0.300\nNETLEASE_NETWORKS=p q p\n")
        assertRefused(
            ["agent", "--config", badUnderlay],
            "NETLEASE_NETWORKS in \(badUnderlay) 'p' is given twice"
        )
        assertRefused(
            ["agent", "--config", badUnderlay, "--network", "p"],
            "NETLEASE_UNDERLAY in \(badUnderlay) '10.0.0.300' is not an IPv4 address"
        )
        assertRefused(
            ["agent", "--config", badUnderlay, "--network", "p", "--underlay", "10.0.0.256"],
            "--underlay '10.0.0.256' is not an IPv4 address"
        )
        let badCoordinator = try write(
            "NETLEASE_HOST=h\nNETLEASE_UNDERLAY=10.0.0.1\nNETLEASE_NETWORKS=p\nNETLEASE_COORDINATORS=a:b\n"
        )
        assertRefused(
            ["agent", "--config", badCoordinator],
            "NETLEASE_COORDINATORS in \(badCoordinator) 'a:b': 'b' in 'a:b' is not a port (0-65535)"
        )
    }
}
