import Foundation
import NetleaseCNI
import NetleaseCore
import XCTest

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
        XCTAssertTrue(text.contains("CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"), text)
    }

    func testACNICallIsNotInformational() {
        XCTAssertNil(CNIPlugin.informational(arguments: ["netlease-cni"], environment: ["CNI_COMMAND": "ADD"]))
        XCTAssertNil(CNIPlugin.informational(arguments: ["netlease-cni"], environment: ["CNI_COMMAND": "VERSION"]))
    }

    /// The VERSION result stays the spec's object: a runtime that checks its shape sees nothing new. Without a
    /// version on stdin it answers in the latest.
    func testVersionCommandResultIsTheSpecsObject() async throws {
        let outcome = await CNIPlugin.run(environment: ["CNI_COMMAND": "VERSION"], input: Data())
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: outcome.stdout) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["cniVersion", "supportedVersions"])
        XCTAssertEqual(object["cniVersion"] as? String, "1.1.0")
    }
}
