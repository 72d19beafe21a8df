import Foundation
import NetleaseCNI
import NetleaseCore
import XCTest

/// Decoding the request configuration, the attachment's owner, and the requested address: pure, no agent.
final class CNIConfigTests: XCTestCase {
    private func decode(_ text: String) throws -> CNIConfig { try CNIConfig(data: Data(text.utf8)) }

    private func code(_ body: () throws -> Any?) -> (Int, String)? {
        do {
            _ = try body()
            return nil
        } catch let error as CNIError {
            return (error.code, error.message)
        } catch {
            XCTFail("\(error)")
            return nil
        }
    }

    func testDecodesEveryKeyThePluginReadsAndIgnoresTheRest() throws {
        let config = try decode(
            """
            {"cniVersion":"1.1.0","name":"podnet","type":"bridge","bridge":"nl0","unknown":[1],
             "ipam":{"type":"netlease-cni","network":"prod","routes":[{"dst":"0.0.0.0/0"},{"dst":"10.9.0.0/16","gw":"172.30.0.1"}]},
             "args":{"cni":{"ips":["172.30.0.9"]}},"runtimeConfig":{"ips":["172.30.0.9/16"]},
             "prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"172.30.0.9/16","interface":0}]},
             "cni.dev/valid-attachments":[{"containerID":"abc","ifname":"eth0"}]}
            """
        )
        XCTAssertEqual(config.cniVersion, "1.1.0")
        XCTAssertEqual(config.name, "podnet")
        XCTAssertEqual(config.ipam.network, "prod")
        XCTAssertEqual(config.ipam.socket, "/run/netlease/agent.sock")
        XCTAssertEqual(
            config.ipam.routes,
            [CNIResult.Route(dst: "0.0.0.0/0"), CNIResult.Route(dst: "10.9.0.0/16", gw: "172.30.0.1")]
        )
        XCTAssertEqual(config.args?.cni?.ips, ["172.30.0.9"])
        XCTAssertEqual(config.runtimeConfig?.ips, ["172.30.0.9/16"])
        XCTAssertEqual(config.prevResult?.ips.map(\.address), ["172.30.0.9/16"])
        XCTAssertEqual(config.validAttachments, [CNIConfig.Attachment(containerID: "abc", ifname: "eth0")])
    }

    func testCodesForConfigurationThatIsNotJSONOrNotValid() {
        let base = #""name":"n","ipam":{"network":"p"}"#
        let cases: [(String, Int, String)] = [
            ("{", 6, "network configuration on stdin is not JSON"),
            ("\"text\"", 7, "network configuration on stdin is not a JSON object"),
            (#"{"cniVersion":1.0,\#(base)}"#, 7, "network configuration: 'cniVersion' is not a string"),
            (#"{"cniVersion":null,\#(base)}"#, 7, "network configuration: 'cniVersion' is null, expected a string"),
            (#"{"cniVersion":"1.0.0","ipam":{"network":"p"}}"#, 7, "network configuration: 'name' is missing"),
            (
                #"{"cniVersion":"1.0.0","name":"a/b","ipam":{"network":"p"}}"#, 7,
                "name 'a/b' is not a valid CNI network name"
            ),
            (
                #"{"cniVersion":"1.0.0",\#(base),"runtimeConfig":{"ips":"10.0.0.1"}}"#, 7,
                "network configuration: 'runtimeConfig.ips' is not a list"
            ),
            (
                #"{"cniVersion":"1.0.0","name":"n","ipam":{"network":"p","routes":[{"dst":"0.0.0.0/0","gw":"x"}]}}"#,
                7, "ipam.routes: gw 'x' is not an IPv4 address"
            ),
        ]
        for (text, expected, message) in cases {
            let result = code { try decode(text) }
            XCTAssertEqual(result?.0, expected, text)
            XCTAssertEqual(result?.1, message, text)
        }
    }

    func testTheOwnerNamesNetworkContainerAndInterfaceAndParsesBack() throws {
        let attachment = try CNIAttachment(
            network: "podnet",
            environment: ["CNI_CONTAINERID": "0123abcd", "CNI_IFNAME": "eth1"]
        )
        XCTAssertEqual(attachment.owner, "cni:podnet/0123abcd/eth1")
        XCTAssertEqual(CNIAttachment(owner: attachment.owner, network: "podnet"), attachment)
        // Another CNI network's lease, `attach`'s and Docker's owners are not this network's.
        for other in ["cni:podnet2/0123abcd/eth1", "cni:pod/0123abcd/eth1", "h1-c1", "docker/02:42:ac:1e:00:05"] {
            XCTAssertNil(CNIAttachment(owner: other, network: "podnet"), other)
        }
        XCTAssertNil(CNIAttachment(owner: "cni:podnet/a/b/c", network: "podnet"))
        XCTAssertNil(CNIAttachment(owner: "cni:podnet//eth0", network: "podnet"))
        let longest = try CNIAttachment(
            network: String(repeating: "n", count: CNIConfig.maxNameBytes),
            environment: [
                "CNI_CONTAINERID": String(repeating: "c", count: CNIAttachment.maxContainerIDBytes),
                "CNI_IFNAME": String(repeating: "i", count: 15),
            ]
        )
        XCTAssertLessThanOrEqual(longest.owner.utf8.count, 256, "the coordinator's owner limit")
    }

    private func request(_ config: String, _ environment: [String: String] = [:]) throws -> CNIAddressRequest? {
        let text = #"{"cniVersion":"1.0.0","name":"n","ipam":{"network":"p"}\#(config)}"#
        return try CNIAddressRequest.from(config: try decode(text), environment: environment)
    }

    func testARequestedAddressComesFromEitherSourceAndArgsWinOverCNIArgs() throws {
        let address = IPv4Address("172.30.0.9")!
        XCTAssertNil(try request(""))
        XCTAssertEqual(try request(#","runtimeConfig":{"ips":["172.30.0.9"]}"#)?.address, address)
        XCTAssertEqual(try request(#","args":{"cni":{"ips":["172.30.0.9/16"]}}"#)?.prefix, 16)
        XCTAssertEqual(try request("", ["CNI_ARGS": "IgnoreUnknown=1;IP=172.30.0.9"])?.address, address)
        XCTAssertEqual(
            try request(#","args":{"cni":{"ips":["172.30.0.9"]}}"#, ["CNI_ARGS": "IP=172.30.0.10"])?.address,
            address
        )
        XCTAssertEqual(
            try request(#","runtimeConfig":{"ips":["172.30.0.9/16"]},"args":{"cni":{"ips":["172.30.0.9/16"]}}"#),
            CNIAddressRequest(address: address, prefix: 16)
        )
    }

    func testRequestedAddressesThatCannotBeServedAreRefused() {
        let cases: [(String, [String: String], Int, String)] = [
            (
                #","args":{"cni":{"ips":["2001:db8::5"]}}"#, [:], 7,
                "args.cni.ips: '2001:db8::5' is not an IPv4 address (netlease leases IPv4 only)"
            ),
            (
                #","runtimeConfig":{"ips":["172.30.0.9","172.30.0.10"]}"#, [:], 7,
                "several addresses asked for (172.30.0.9, 172.30.0.10); netlease leases one address per attachment"
            ),
            (
                "", ["CNI_ARGS": "IP=172.30.0.9/33"], 7,
                "CNI_ARGS IP: '172.30.0.9/33' is not an IPv4 address (netlease leases IPv4 only)"
            ),
            ("", ["CNI_ARGS": "IP=1.2.3.4;junk"], 4, "CNI_ARGS: 'junk' is not KEY=VALUE"),
        ]
        for (config, environment, expected, message) in cases {
            let result = code { try self.request(config, environment) }
            XCTAssertEqual(result?.0, expected, config)
            XCTAssertEqual(result?.1, message, config)
        }
    }
}

/// The conflist `netlease cni-config` prints, and the example shipped in deploy/ that shows it.
final class CNIConflistTests: XCTestCase {
    func testTheShippedExampleIsWhatCNIConfigPrints() throws {
        let rendered = CNIConflist.render(facts: .prod, socket: "/run/netlease/agent.sock")
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/cni/netlease.conflist.example")
        XCTAssertEqual(String(decoding: rendered, as: UTF8.self), try String(contentsOf: example, encoding: .utf8))
        // What the plugin itself reads of it decodes.
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: rendered) as? [String: Any])
        var plugin = try XCTUnwrap((list["plugins"] as? [[String: Any]])?.first)
        plugin["cniVersion"] = list["cniVersion"]
        plugin["name"] = list["name"]
        let config = try CNIConfig(data: JSONSerialization.data(withJSONObject: plugin))
        XCTAssertEqual(config.ipam.routes, [CNIResult.Route(dst: "0.0.0.0/0")])
        XCTAssertEqual(config.ipam.network, "prod")
    }
}
