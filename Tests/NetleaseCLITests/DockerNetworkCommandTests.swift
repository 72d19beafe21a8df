import ArgumentParser
import XCTest

@testable import netlease

final class DockerNetworkCommandTests: XCTestCase {
    func testDockerNetworkTakesTheNetworkAndTheClientOptions() throws {
        let command = try parse(["docker-network", "demo", "--coordinator", "10.0.0.9:7420"],
                                as: Netlease.DockerNetwork.self)
        XCTAssertEqual(command.name, "demo")
        XCTAssertEqual(command.client.coordinator, "10.0.0.9:7420")
    }

    func testDockerNetworkNeedsANetwork() {
        assertRefused(["docker-network"], "Missing expected argument '<name>'")
    }
}
