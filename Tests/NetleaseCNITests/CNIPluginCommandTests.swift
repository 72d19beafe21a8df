import Foundation
import NetleaseCNI
import NetleaseCore
import XCTest

final class CNIPluginCommandTests: XCTestCase {
    private func json(_ outcome: CNIPlugin.Outcome) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: outcome.stdout) as? [String: Any])
    }

    func testVersionListsEverySupportedVersion() async throws {
        let outcome = await CNIPlugin.run(environment: ["CNI_COMMAND": "VERSION"], input: Data())
        XCTAssertEqual(outcome.exitStatus, 0)
        let object = try json(outcome)
        XCTAssertEqual(object["supportedVersions"] as? [String], ["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
    }

    func testConfigurationThatIsNotJSONIsCode7() async throws {
        let outcome = await CNIPlugin.run(environment: ["CNI_COMMAND": "ADD"], input: Data("not json".utf8))
        XCTAssertEqual(outcome.exitStatus, 1)
        XCTAssertEqual(try json(outcome)["code"] as? Int, 7)
    }

    func testMissingNetworkIsCode7() async throws {
        let config = #"{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"netlease-cni"}}"#
        let outcome = await CNIPlugin.run(environment: ["CNI_COMMAND": "ADD"], input: Data(config.utf8))
        XCTAssertEqual(try json(outcome)["code"] as? Int, 7)
        XCTAssertEqual(
            try json(outcome)["msg"] as? String,
            "ipam.network is missing: name the netlease network to lease from"
        )
    }

    func testMissingContainerIDIsCode4() async throws {
        let config = #"{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"netlease-cni","network":"p"}}"#
        let outcome = await CNIPlugin.run(environment: ["CNI_COMMAND": "ADD"], input: Data(config.utf8))
        XCTAssertEqual(outcome.exitStatus, 1)
        XCTAssertEqual(try json(outcome)["code"] as? Int, 4)
        XCTAssertEqual(try json(outcome)["msg"] as? String, "CNI_CONTAINERID is not set")
    }

    func testUnsupportedVersionIsCode1AndAnswersInThatVersion() async throws {
        let config = #"{"cniVersion":"0.2.0","name":"n","type":"bridge","ipam":{"type":"netlease-cni","network":"p"}}"#
        let outcome = await CNIPlugin.run(environment: ["CNI_COMMAND": "ADD"], input: Data(config.utf8))
        let object = try json(outcome)
        XCTAssertEqual(object["code"] as? Int, 1)
        XCTAssertEqual(object["cniVersion"] as? String, "0.2.0")
    }

    func testAgentDownIsCode11() async throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("absent-\(UUID().uuidString).sock")
        let config = """
            {"cniVersion":"1.0.0","name":"n","type":"bridge",\
            "ipam":{"type":"netlease-cni","network":"p","socket":"\(socket.path)"}}
            """
        let outcome = await CNIPlugin.run(
            environment: ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0"],
            input: Data(config.utf8)
        )
        XCTAssertEqual(outcome.exitStatus, 1)
        XCTAssertEqual(try json(outcome)["code"] as? Int, 11)
    }
}

/// What the plugin says to a person: its release, and what it is when run without CNI_COMMAND.
final class CNIPluginInformationTests: XCTestCase {
    func testVersionFlagPrintsThePluginsRelease() throws {
        let outcome = try XCTUnwrap(
            CNIPlugin.informational(arguments: ["netlease-cni", "--version"], environment: [:])
        )
        XCTAssertEqual(outcome.exitStatus, 0)
        XCTAssertEqual(String(decoding: outcome.stdout, as: UTF8.self), "netlease-cni \(NetleaseVersion.current)\n")
    }

    func testWithoutCNICommandItDescribesItselfOnStderr() throws {
        let outcome = try XCTUnwrap(CNIPlugin.informational(arguments: ["netlease-cni"], environment: [:]))
        XCTAssertEqual(outcome.exitStatus, 0)
        XCTAssertTrue(outcome.stdout.isEmpty)
        let text = String(decoding: outcome.stderr, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("CNI netlease-cni plugin \(NetleaseVersion.current)"), text)
        XCTAssertTrue(text.contains("CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0"), text)
    }

    func testACNICallIsNotInformational() {
        XCTAssertNil(CNIPlugin.informational(arguments: ["netlease-cni"], environment: ["CNI_COMMAND": "ADD"]))
        XCTAssertNil(CNIPlugin.informational(arguments: ["netlease-cni"], environment: ["CNI_COMMAND": "VERSION"]))
    }

    /// The VERSION result stays the spec's object: a runtime that checks its shape sees nothing new.
    func testVersionCommandResultIsTheSpecsObject() async throws {
        let outcome = await CNIPlugin.run(environment: ["CNI_COMMAND": "VERSION"], input: Data())
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: outcome.stdout) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["cniVersion", "supportedVersions"])
    }
}
