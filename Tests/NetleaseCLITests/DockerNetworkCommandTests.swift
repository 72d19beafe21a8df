import ArgumentParser
import Foundation
import XCTest

@testable import netlease

final class DockerNetworkCommandTests: XCTestCase {
    /// The line is this host's: the agent at --socket knows the bridge's MTU.
    func testDockerNetworkTakesTheNetworkAndTheAgentSocket() throws {
        let command = try parse(
            ["docker-network", "demo", "--socket", "/run/nl.sock"],
            as: Netlease.DockerNetwork.self
        )
        XCTAssertEqual(command.name, "demo")
        XCTAssertEqual(command.agent.socket, "/run/nl.sock")
        let plain = try parse(["docker-network", "demo"], as: Netlease.DockerNetwork.self)
        XCTAssertEqual(plain.agent.socket, "/run/netlease/agent.sock")
    }

    func testCNIConfigTakesTheNetworkTheAgentSocketAndAVersion() throws {
        let command = try parse(
            ["cni-config", "demo", "--socket", "/run/nl.sock", "--cni-version", "1.1.0"],
            as: Netlease.CNIConfigCommand.self
        )
        XCTAssertEqual(command.name, "demo")
        XCTAssertEqual(command.agent.socket, "/run/nl.sock")
        XCTAssertEqual(command.cniVersion, "1.1.0")
        XCTAssertEqual(try parse(["cni-config", "demo"], as: Netlease.CNIConfigCommand.self).cniVersion, "1.0.0")
    }

    func testCNIConfigRefusesAVersionThePluginDoesNotSpeak() {
        assertRefused(
            ["cni-config", "demo", "--cni-version", "0.2.0"],
            "--cni-version 0.2.0 is not one netlease-cni speaks: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"
        )
        assertRefused(["cni-config"], "Missing expected argument '<name>'")
    }

    func testTheAgentServesTheDockerPluginOnlyWhenGivenASocket() throws {
        let plain = try parse(AgentCommandTests.required, as: Netlease.AgentCommand.self)
        XCTAssertNil(plain.dockerPlugin)
        let serving = try parse(
            AgentCommandTests.required + ["--docker-plugin", "/run/docker/plugins/netlease.sock"],
            as: Netlease.AgentCommand.self
        )
        XCTAssertEqual(serving.dockerPlugin, "/run/docker/plugins/netlease.sock")
    }

    func testDockerNetworkNeedsANetwork() {
        assertRefused(["docker-network"], "Missing expected argument '<name>'")
    }

    /// Without an agent at --socket both commands fail with `unavailable`, print nothing on stdout, and with --json
    /// report the failure as one JSON object.
    func testWithoutAnAgentBothCommandsAreUnavailable() async throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("absent-\(UUID().uuidString).sock")
        for command in ["docker-network", "cni-config"] {
            let run = try await BuiltExecutable.run("netlease", [command, "demo", "--socket", socket.path, "--json"])
            XCTAssertEqual(run.status, 1, command)
            XCTAssertEqual(run.stdout, "", command)
            let error = try XCTUnwrap((try run.stderrJSON() as? [String: Any])?["error"] as? [String: Any])
            XCTAssertEqual(error["code"] as? String, "unavailable", command)
            let message = error["message"] as? String ?? ""
            XCTAssertTrue(message.hasPrefix("netlease agent unavailable at \(socket.path)"), message)
            XCTAssertTrue(message.hasSuffix("is the agent running?"), message)
        }
    }
}
