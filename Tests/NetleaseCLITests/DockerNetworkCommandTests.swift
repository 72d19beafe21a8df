import ArgumentParser
import XCTest

@testable import netlease

final class DockerNetworkCommandTests: XCTestCase {
    func testDockerNetworkTakesTheNetworkAndTheClientOptions() throws {
        let command = try parse(
            ["docker-network", "demo", "--coordinator", "10.0.0.9:7420"],
            as: Netlease.DockerNetwork.self
        )
        XCTAssertEqual(command.name, "demo")
        XCTAssertEqual(command.client.coordinator, "10.0.0.9:7420")
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
}
