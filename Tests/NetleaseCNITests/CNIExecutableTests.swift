import Foundation
import NetleaseTesting
import XCTest

/// The built `netlease-cni` as a CNI runtime runs it: `CNI_*` variables, the network configuration on stdin, the
/// result or error object on stdout, the exit status. No agent runs here, so every command that needs one meets a
/// socket that does not exist.
///
/// The CNI spec's error codes (SPEC.md "Error"): 1 incompatible version, 4 invalid necessary environment
/// variables, 6 undecodable content, 7 invalid network configuration, 11 try again later, 51 (STATUS) not available
/// with limited connectivity.
final class CNIExecutableTests: XCTestCase {
    private var scratch: String!

    override func setUpWithError() throws {
        scratch =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-cni-exec-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    private var absentSocket: String { (scratch as NSString).appendingPathComponent("agent.sock") }

    private func config(version: String = "1.0.0", ipam: String? = nil, extra: String = "") -> Data {
        let ipam = ipam ?? #"{"type":"netlease-cni","network":"prod","socket":"\#(absentSocket)"}"#
        return Data(#"{"cniVersion":"\#(version)","name":"prod","type":"bridge","ipam":\#(ipam)\#(extra)}"#.utf8)
    }

    private let container = [
        "CNI_CONTAINERID": "c0ffee", "CNI_IFNAME": "eth0", "CNI_NETNS": "/var/run/netns/x",
        "CNI_PATH": "/usr/lib/cni",
    ]

    private func plugin(_ environment: [String: String], _ input: Data?) throws -> ExecutableRun {
        let binary: String
        do { binary = try Executables.path("netlease-cni") } catch { try missingCapability("\(error)") }
        return try ExecutableRun.run(binary, [], environment: environment, input: input, timeout: .seconds(30))
    }

    /// The CNI error object on stdout; asserts exit status 1, nothing on stderr, and the version echoed.
    private func error(
        _ run: ExecutableRun,
        version: String = "1.0.0",
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> (code: Int, msg: String) {
        XCTAssertEqual(run.status, 1, run.stdout, file: file, line: line)
        XCTAssertEqual(run.stderr, "", file: file, line: line)
        let object = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
            file: file,
            line: line
        )
        XCTAssertEqual(object["cniVersion"] as? String, version, file: file, line: line)
        return (
            try XCTUnwrap(object["code"] as? Int, file: file, line: line),
            try XCTUnwrap(object["msg"] as? String, file: file, line: line)
        )
    }

    func testVersionAnswersInTheAskedVersionWithEverySupportedVersion() throws {
        for asked in ["0.4.0", "1.1.0"] {
            let run = try plugin(["CNI_COMMAND": "VERSION"], Data(#"{"cniVersion":"\#(asked)"}"#.utf8))
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(run.stderr, "")
            let object = try XCTUnwrap(
                try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            )
            XCTAssertEqual(object["cniVersion"] as? String, asked)
            XCTAssertEqual(
                object["supportedVersions"] as? [String],
                ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
            )
        }
    }

    /// ADD and CHECK need the agent: without one each is code 11, so the runtime retries. DEL is best effort: with
    /// no address in prevResult nothing is known to be leased, so it succeeds; with one it is code 11, so the
    /// runtime retries instead of leaking the lease.
    func testWithoutAnAgentAddAndCheckAreCode11AndDelDependsOnPrevResult() throws {
        let previous = #","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"172.30.0.9/16"}]}"#
        for version in ["0.4.0", "1.0.0", "1.1.0"] {
            for command in ["ADD", "CHECK", "DEL"] {
                let input = command == "ADD" ? config(version: version) : config(version: version, extra: previous)
                let run = try plugin(container.merging(["CNI_COMMAND": command]) { $1 }, input)
                let (code, msg) = try error(run, version: version)
                XCTAssertEqual(code, 11, "\(command) \(version): \(msg)")
                XCTAssertEqual(msg, "netlease agent unavailable at \(absentSocket)", command)
            }
            let del = try plugin(container.merging(["CNI_COMMAND": "DEL"]) { $1 }, config(version: version))
            XCTAssertEqual(del.status, 0, del.stdout)
            XCTAssertEqual(del.stdout, "")
        }
    }

    func testInvalidEnvironmentIsCode4NamingTheVariable() throws {
        let add = ["CNI_COMMAND": "ADD", "CNI_NETNS": "/var/run/netns/x"]
        let cases: [([String: String], String)] = [
            (add.merging(["CNI_IFNAME": "eth0"]) { $1 }, "CNI_CONTAINERID is not set"),
            (add.merging(["CNI_CONTAINERID": "c0ffee"]) { $1 }, "CNI_IFNAME is not set"),
            (add.merging(["CNI_CONTAINERID": "", "CNI_IFNAME": "eth0"]) { $1 }, "CNI_CONTAINERID is not set"),
            (
                add.merging(["CNI_CONTAINERID": String(repeating: "a", count: 129), "CNI_IFNAME": "eth0"]) { $1 },
                "CNI_CONTAINERID is 129 bytes; at most 128 are accepted"
            ),
            (
                add.merging(["CNI_CONTAINERID": "-x", "CNI_IFNAME": "eth0"]) { $1 },
                "CNI_CONTAINERID '-x' is invalid: a letter or digit, then letters, digits, '_', '.' or '-'"
            ),
            (
                add.merging(["CNI_CONTAINERID": "c0ffee", "CNI_IFNAME": "a/b"]) { $1 },
                "CNI_IFNAME 'a/b' is not a Linux interface name: 1-15 bytes, not '.' or '..', no '/', ':', '%', "
                    + "space or control character"
            ),
            (
                add.merging(["CNI_CONTAINERID": "c0ffee", "CNI_IFNAME": "eth0123456789012"]) { $1 },
                "CNI_IFNAME 'eth0123456789012' is not a Linux interface name: 1-15 bytes, not '.' or '..', no "
                    + "'/', ':', '%', space or control character"
            ),
            (["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c0ffee", "CNI_IFNAME": "eth0"], "CNI_NETNS is not set"),
            (container.merging(["CNI_COMMAND": "ADD", "CNI_ARGS": "IP"]) { $1 }, "CNI_ARGS: 'IP' is not KEY=VALUE"),
            (
                container.merging(["CNI_COMMAND": "FROB"]) { $1 },
                "CNI_COMMAND 'FROB' is not ADD, DEL, CHECK, GC, STATUS or VERSION"
            ),
        ]
        for (environment, message) in cases {
            let (code, msg) = try error(try plugin(environment, config()))
            XCTAssertEqual(code, 4, "\(environment): \(msg)")
            XCTAssertEqual(msg, message)
        }
    }

    /// Content that is not JSON is code 6, JSON that is not a valid configuration code 7, naming the key.
    func testUndecodableConfigurationIsCode6AndInvalidIsCode7() throws {
        let add = container.merging(["CNI_COMMAND": "ADD"]) { $1 }
        let cases: [(Data, Int, String)] = [
            (Data(), 6, "network configuration on stdin is not JSON"),
            (Data("not json".utf8), 6, "network configuration on stdin is not JSON"),
            (Data("[1,2]".utf8), 7, "network configuration on stdin is not a JSON object"),
            (
                Data(#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#.utf8), 7,
                "network configuration has no 'ipam' object"
            ),
            (
                Data(#"{"cniVersion":1,"name":"n","type":"bridge","ipam":{"network":"p"}}"#.utf8), 7,
                "network configuration: 'cniVersion' is not a string"
            ),
            (
                Data(#"{"name":"n","type":"bridge","ipam":{"network":"p"}}"#.utf8), 7,
                "network configuration: 'cniVersion' is missing"
            ),
            (
                config(ipam: #"{"type":"netlease-cni"}"#), 7,
                "ipam.network is missing: name the netlease network to lease from"
            ),
            (
                config(ipam: #"{"type":"netlease-cni","network":""}"#), 7,
                "ipam.network is missing: name the netlease network to lease from"
            ),
            (
                config(ipam: #"{"type":"netlease-cni","network":"p","socket":"agent.sock"}"#), 7,
                "ipam.socket 'agent.sock' is not an absolute path to the agent's socket"
            ),
            (
                config(ipam: #"{"type":"netlease-cni","network":"p","routes":[{"dst":"10.0.0.1/8"}]}"#), 7,
                "ipam.routes: dst '10.0.0.1/8' is not an IPv4 network in CIDR notation"
            ),
            (
                config(ipam: #"{"type":"netlease-cni","network":"p","routes":[{"gw":"10.0.0.1"}]}"#), 7,
                "network configuration: 'ipam.routes[0].dst' is missing"
            ),
        ]
        for (input, expected, message) in cases {
            let version = input.starts(with: Data(#"{"cniVersion":"1.0.0""#.utf8)) ? "1.0.0" : "1.1.0"
            let (code, msg) = try error(try plugin(add, input), version: version)
            XCTAssertEqual(code, expected, String(decoding: input, as: UTF8.self))
            XCTAssertEqual(msg, message)
        }
    }

    func testUnsupportedVersionAndVerbsNewerThanTheVersionAreCode1() throws {
        let add = container.merging(["CNI_COMMAND": "ADD"]) { $1 }
        let old = try error(try plugin(add, config(version: "0.2.0")), version: "0.2.0")
        XCTAssertEqual(old.code, 1)
        XCTAssertEqual(old.msg, "incompatible CNI version 0.2.0")
        let cases = [
            ("CHECK", "0.3.1", "config version 0.3.1 does not allow CHECK (needs 0.4.0 or later)"),
            ("GC", "1.0.0", "config version 1.0.0 does not allow GC (needs 1.1.0 or later)"),
            ("STATUS", "1.0.0", "config version 1.0.0 does not allow STATUS (needs 1.1.0 or later)"),
        ]
        for (command, version, message) in cases {
            let run = try plugin(container.merging(["CNI_COMMAND": command]) { $1 }, config(version: version))
            let (code, msg) = try error(run, version: version)
            XCTAssertEqual(code, 1, command)
            XCTAssertEqual(msg, message)
        }
    }

    /// STATUS without an agent is 51: nothing serves ADD, and nothing follows the tunnel mesh either.
    func testStatusWithoutAnAgentIsCode51() throws {
        let run = try plugin(["CNI_COMMAND": "STATUS"], config(version: "1.1.0"))
        let (code, msg) = try error(run, version: "1.1.0")
        XCTAssertEqual(code, 51)
        XCTAssertEqual(msg, "netlease agent unavailable at \(absentSocket)")
    }
}
