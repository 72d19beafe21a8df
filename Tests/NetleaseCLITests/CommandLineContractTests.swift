import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The `netlease` executable as scripts see it, against a child coordinator, without root: exit statuses, what goes
/// to stdout and stderr, where the secret is found, and the key sets of every `--json` output.
///
/// Exit statuses: 0 success; 64 a refused command line — a missing or unknown argument, or a bad value (`--state`,
/// an `--address`, the `--coordinator` port) — with `Error: …` and the usage on stderr, before anything is contacted;
/// 1 any other failure, with exactly one line `error: <code>: <message>` on stderr and nothing on stdout.
final class CommandLineContractTests: XCTestCase {
    private var scratch: String!
    private var coordinator: CoordinatorProcess?

    override func setUpWithError() throws {
        scratch =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-cli-contract-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        coordinator?.cleanUp()
        coordinator = nil
        try? FileManager.default.removeItem(atPath: scratch)
    }

    private func binary() throws -> String {
        do { return try Executables.path() } catch { try missingCapability("\(error)") }
    }

    private func path(_ name: String) -> String { (scratch as NSString).appendingPathComponent(name) }

    private func startCoordinator() async throws -> CoordinatorProcess {
        let started = try await CoordinatorProcess.start(binary: try binary(), directory: path("data"))
        coordinator = started
        return started
    }

    /// Runs `netlease arguments…` in an empty working directory (unless told otherwise).
    private func netlease(
        _ arguments: [String],
        environment: [String: String] = [:],
        directory: String? = nil
    ) throws -> ExecutableRun {
        let workdir = directory ?? path("empty")
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        return try ExecutableRun.run(try binary(), arguments, environment: environment, directory: workdir)
    }

    /// `arguments` plus the running coordinator and its cluster secret.
    private func admin(_ arguments: [String]) throws -> ExecutableRun {
        let coordinator = try XCTUnwrap(coordinator)
        return try netlease(
            arguments + ["--coordinator", coordinator.address, "--secret-file", coordinator.secretFile]
        )
    }

    /// Asserts the one-line `error: <code>: …` contract and returns the message after the code.
    @discardableResult
    private func assertError(
        _ run: ExecutableRun,
        _ code: String,
        _ context: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> String {
        XCTAssertEqual(run.status, 1, "\(context): exit status; stderr \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stdout, "", "\(context): stdout", file: file, line: line)
        let lines = run.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(
            lines.count,
            2,
            "\(context): one line and its newline on stderr: \(run.stderr)",
            file: file,
            line: line
        )
        let prefix = "error: \(code): "
        XCTAssertTrue(run.stderr.hasPrefix(prefix), "\(context): \(run.stderr)", file: file, line: line)
        return String(run.stderr.dropFirst(prefix.count)).trimmingCharacters(in: .newlines)
    }

    // MARK: usage errors

    func testUsageErrorsExit64NamingTheProblemWithoutContactingAnyone() throws {
        let listener = try TCPListener()
        defer { listener.close() }
        let coordinator = ["--coordinator", "127.0.0.1:\(listener.port)"]
        let cases: [([String], String)] = [
            (["frob"], "Error: Unexpected argument 'frob'"),
            (["network", "create"] + coordinator, "Error: Missing expected argument '<name>'"),
            (
                ["network", "create", "blue", "--subnet", "10.1.0.0"] + coordinator,
                "Error: --subnet '10.1.0.0' is not a CIDR with host bits zero (like 172.30.0.0/16)"
            ),
            (
                ["lease", "acquire", "--owner", "x"] + coordinator,
                "Error: Missing expected argument '--network <network>'"
            ),
            (["coordinator", "--max-batch", "0"], "Error: --max-batch must be positive"),
            (
                ["agent", "--host", "h", "--underlay", "10.0.0.1"] + coordinator,
                "Error: give at least one --network"
            ),
            (
                ["agent", "--host", "h", "--underlay", "10.0.0", "--network", "n"] + coordinator,
                "Error: --underlay '10.0.0' is not an IPv4 address"
            ),
            (
                ["agent", "--host", "h", "--underlay", "10.0.0.1", "--network", "n", "--coordinator", "h:99999"],
                "Error: --coordinator 'h:99999': '99999' in 'h:99999' is not a port (0-65535)"
            ),
            (
                ["leases", "--state", "bogus"] + coordinator,
                "Error: --state 'bogus' must be active, reserved, conflict or cooldown"
            ),
            (["leases", "--address", "10.1.0"] + coordinator, "Error: --address '10.1.0' is not an IPv4 address"),
            (
                ["lease", "acquire", "--network", "n", "--owner", "o", "--address", "10.1.0.256"] + coordinator,
                "Error: --address '10.1.0.256' is not an IPv4 address"
            ),
            (
                ["lease", "release", "--network", "n", "--address", "x"] + coordinator,
                "Error: --address 'x' is not an IPv4 address"
            ),
            (
                ["lease", "reserve", "--network", "n", "--address", "10.1.0.1/24"] + coordinator,
                "Error: --address '10.1.0.1/24' is not an IPv4 address"
            ),
            (
                ["lease", "unreserve", "--network", "n", "--address", ""] + coordinator,
                "Error: --address '' is not an IPv4 address"
            ),
            (
                ["network", "list", "--coordinator", "127.0.0.1:99999"],
                "Error: '99999' in '127.0.0.1:99999' is not a port (0-65535)"
            ),
            (
                ["network", "list", "--tls-cert", "c.pem"] + coordinator,
                "Error: TLS needs --tls-cert (or NETLEASE_TLS_CERT), --tls-key (or NETLEASE_TLS_KEY) and --tls-ca "
                    + "(or NETLEASE_TLS_CA) together; missing: --tls-key (or NETLEASE_TLS_KEY), "
                    + "--tls-ca (or NETLEASE_TLS_CA)"
            ),
        ]
        for (arguments, message) in cases {
            let run = try netlease(arguments)
            XCTAssertEqual(run.status, 64, "\(arguments): \(run.stderr)")
            XCTAssertEqual(run.stdout, "", "\(arguments)")
            XCTAssertEqual(run.stderr.split(separator: "\n").first.map(String.init), message, "\(arguments)")
            XCTAssertTrue(run.stderr.contains("Usage: netlease"), "\(arguments): no usage shown")
        }
        // A socket group this host lacks is its state, not a bad value: a failure (exit 1), found before any contact.
        let agent = try netlease(
            ["agent", "--host", "h", "--underlay", "10.0.0.1", "--network", "n", "--socket-group", "nl-no-such-group"]
                + coordinator + ["--socket", path("agent.sock"), "--state-dir", path("state")]
        )
        assertError(agent, "bad-request", "an unknown socket group")
        XCTAssertTrue(agent.stderr.contains("--socket-group 'nl-no-such-group' is not a group on this host"))
        XCTAssertEqual(listener.acceptedSoFar(), 0, "a refused command line still connected to the coordinator")
    }

    // MARK: runtime errors

    func testFailuresAreOneErrorLineWithTheirCodeAndExitStatus1() async throws {
        _ = try await startCoordinator()
        XCTAssertEqual(try admin(["network", "create", "tiny", "--subnet", "10.4.0.0/30"]).status, 0)
        assertError(try admin(["network", "create", "tiny", "--subnet", "10.4.0.0/30"]), "conflict", "twice")
        XCTAssertEqual(
            assertError(try admin(["network", "show", "nope"]), "unknown-network", "show"),
            "no network named 'nope'"
        )
        assertError(
            try admin(["lease", "acquire", "--network", "nope", "--owner", "x"]),
            "unknown-network",
            "acquire"
        )
        for owner in ["a", "b"] {
            XCTAssertEqual(try admin(["lease", "acquire", "--network", "tiny", "--owner", owner]).status, 0)
        }
        let exhausted = assertError(
            try admin(["lease", "acquire", "--network", "tiny", "--owner", "c"]),
            "pool-exhausted",
            "a full /30"
        )
        XCTAssertTrue(exhausted.contains("leased=2 reserved=0 conflict=0 cooldown=0 free=0"), exhausted)
        assertError(try admin(["network", "delete", "tiny"]), "conflict", "deleting a network in use")
        // Releasing what is not held is success: idempotent, `null` as JSON.
        let released = try admin(["lease", "release", "--network", "tiny", "--owner", "nobody", "--json"])
        XCTAssertEqual(released.status, 0, released.stderr)
        XCTAssertEqual(released.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "null")
        XCTAssertEqual(released.stderr, "")
        let existing = path("existing.db")
        try Data("keep".utf8).write(to: URL(fileURLWithPath: existing))
        assertError(try admin(["backup", "--out", existing]), "bad-request", "backup over a file")
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "keep")

        let down = try netlease(["network", "list", "--coordinator", "127.0.0.1:1"])
        XCTAssertTrue(
            assertError(down, "unavailable", "nothing listening").hasPrefix(
                "cannot connect to coordinator at 127.0.0.1:1"
            )
        )
        let agent = try netlease(["doctor", "--socket", path("absent.sock")])
        XCTAssertTrue(
            assertError(agent, "unavailable", "doctor without an agent").hasPrefix(
                "cannot connect to the agent at \(path("absent.sock"))"
            )
        )
    }

    // MARK: secret discovery

    func testTheSecretIsFoundByFlagThenEnvironmentThenTheLocalDataDirectory() async throws {
        let coordinator = try await startCoordinator()
        let list = ["network", "list", "--coordinator", coordinator.address]
        let wrong = path("wrong-secret")
        try Data((String(repeating: "0", count: 64) + "\n").utf8).write(to: URL(fileURLWithPath: wrong))
        XCTAssertEqual(chmod(wrong, 0o600), 0)
        let withLocal = path("with-local")
        try FileManager.default.createDirectory(atPath: withLocal + "/netlease-data", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: coordinator.secretFile,
            toPath: withLocal + "/netlease-data/cluster-secret"
        )
        let withWrongLocal = path("with-wrong-local")
        try FileManager.default.createDirectory(
            atPath: withWrongLocal + "/netlease-data",
            withIntermediateDirectories: true
        )
        try FileManager.default.copyItem(atPath: wrong, toPath: withWrongLocal + "/netlease-data/cluster-secret")
        let right = coordinator.secretFile
        let secret = ["NETLEASE_SECRET_FILE": right]
        let wrongSecret = ["NETLEASE_SECRET_FILE": wrong]

        // No secret anywhere: unauthenticated, and a listing needs authentication.
        assertError(try netlease(list), "auth-required", "no secret")
        // Each source alone.
        XCTAssertEqual(try netlease(list + ["--secret-file", right]).status, 0, "--secret-file")
        XCTAssertEqual(try netlease(list, environment: secret).status, 0, "NETLEASE_SECRET_FILE")
        XCTAssertEqual(try netlease(list, directory: withLocal).status, 0, "./netlease-data/cluster-secret")
        // Precedence: the flag over the environment, the environment over the local file.
        assertError(try netlease(list + ["--secret-file", wrong], environment: secret), "auth-failed", "flag wins")
        XCTAssertEqual(try netlease(list + ["--secret-file", right], environment: wrongSecret).status, 0)
        assertError(try netlease(list, environment: wrongSecret, directory: withLocal), "auth-failed", "env wins")
        XCTAssertEqual(try netlease(list, environment: secret, directory: withWrongLocal).status, 0)
        // A named file that cannot be read is an error, never a silent fall back to no secret.
        XCTAssertEqual(
            assertError(
                try netlease(list, environment: ["NETLEASE_SECRET_FILE": path("absent")]),
                "bad-request",
                "missing file"
            ),
            "cannot read secret file \(path("absent")): No such file or directory"
        )
        // The coordinator's address from the environment.
        let byEnvironment = try netlease(
            ["network", "list", "--secret-file", right],
            environment: ["NETLEASE_COORDINATOR": coordinator.address]
        )
        XCTAssertEqual(byEnvironment.status, 0, byEnvironment.stderr)
        // The reader secret lists but changes nothing.
        XCTAssertEqual(try netlease(list + ["--secret-file", coordinator.readerSecretFile]).status, 0)
        assertError(
            try netlease([
                "network", "create", "r", "--subnet", "10.5.0.0/24", "--coordinator", coordinator.address,
                "--secret-file", coordinator.readerSecretFile,
            ]),
            "forbidden",
            "reader creating a network"
        )
    }

    // MARK: --json key sets

    /// A JSON value reduced to its type (objects keep their keys): the contract scripts rely on, so a renamed,
    /// dropped or retyped field fails. Decoded with JSONDecoder, which tells `true` from `1` on every platform.
    indirect enum JSONShape: Decodable, Equatable {
        case null, bool, number, string
        case array([JSONShape])
        case object([String: JSONShape])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if (try? container.decode(Bool.self)) != nil {
                self = .bool
            } else if (try? container.decode(Double.self)) != nil {
                self = .number
            } else if (try? container.decode(String.self)) != nil {
                self = .string
            } else if let array = try? container.decode([JSONShape].self) {
                self = .array(array)
            } else {
                self = .object(try container.decode([String: JSONShape].self))
            }
        }

        /// Key → type name of an object; empty for anything else.
        var keys: [String: String] {
            guard case .object(let members) = self else { return [:] }
            return members.mapValues { member in
                switch member {
                case .null: return "null"
                case .bool: return "bool"
                case .number: return "number"
                case .string: return "string"
                case .array: return "array"
                case .object: return "object"
                }
            }
        }

        var elements: [JSONShape] {
            guard case .array(let elements) = self else { return [] }
            return elements
        }
    }

    private func json(
        _ run: ExecutableRun,
        _ context: String,
        file: StaticString = #filePath,
        line: UInt = #line
    )
        throws -> JSONShape
    {
        XCTAssertEqual(run.status, 0, "\(context): \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stderr, "", "\(context)", file: file, line: line)
        return try JSONDecoder().decode(JSONShape.self, from: Data(run.stdout.utf8))
    }

    static let networkShape: [String: String] = [
        "active": "number", "bridge": "string", "conflict": "number", "cooldown": "number", "created": "string",
        "exclude": "array", "free": "number", "in_cooldown": "number", "lease_ttl": "number", "mtu": "number",
        "name": "string", "reserved": "number", "subnet": "string", "tunnel": "string", "usable": "number",
        "vni": "number",
    ]
    static let leaseShape: [String: String] = [
        "address": "string", "cidr": "string", "created": "string", "host": "string", "ifname": "string",
        "mac": "string", "network": "string", "note": "string", "owner": "string", "prefix": "number",
        "renewed": "string", "state": "string", "static": "bool",
    ]
    /// A lease in cooldown also says until when.
    static let coolingLeaseShape = leaseShape.merging(["until": "string"]) { $1 }
    static let hostShape: [String: String] = [
        "epoch": "number", "heartbeat": "string", "joined": "string", "name": "string", "networks": "array",
        "state": "string", "underlay": "string",
    ]
    static let statsKeys: Set<String> = [
        "connections", "connections-evicted", "connections-readers", "connections-refused", "connections-total",
        "connections-unauthenticated", "errors", "hosts-lost", "hosts-up",
        "leases-active", "leases-conflict", "leases-cooldown", "leases-reserved", "networks", "requests",
        "store", "store-commits", "store-failed-commits", "store-generation", "store-id", "store-largest-batch",
        "store-operations", "uptime-seconds", "version", "watchers",
    ]
    /// The words among the STATS fields: JSON strings; every other field is a number.
    static let statsWords: Set<String> = ["store", "store-id", "version"]

    func testEveryJSONOutputHasItsKeys() async throws {
        let coordinator = try await startCoordinator()
        let created = try json(
            try admin(["network", "create", "blue", "--subnet", "10.1.0.0/24", "--exclude", "10.1.0.5", "--json"]),
            "network create"
        )
        XCTAssertEqual(created.keys, Self.networkShape, "network create --json")
        let list = try json(try admin(["network", "list", "--json"]), "network list").elements
        XCTAssertEqual(list.map(\.keys), [Self.networkShape], "network list --json")
        XCTAssertEqual(try json(try admin(["network", "show", "blue", "--json"]), "show").keys, Self.networkShape)

        let acquired = try json(
            try admin(["lease", "acquire", "--network", "blue", "--owner", "o1", "--json"]),
            "lease acquire"
        )
        XCTAssertEqual(acquired.keys, Self.leaseShape, "lease acquire --json")
        let reserved = try json(
            try admin(["lease", "reserve", "--network", "blue", "--address", "10.1.0.9", "--json"]),
            "lease reserve"
        )
        XCTAssertEqual(reserved.keys, Self.leaseShape, "lease reserve --json")
        _ = try json(try admin(["lease", "acquire", "--network", "blue", "--owner", "o2", "--json"]), "o2")
        let released = try json(
            try admin(["lease", "release", "--network", "blue", "--owner", "o2", "--json"]),
            "lease release"
        )
        XCTAssertEqual(released.keys, Self.coolingLeaseShape, "lease release --json")

        let leases = try json(try admin(["leases", "--network", "blue", "--json"]), "leases").elements
        XCTAssertEqual(leases.map(\.keys), [Self.leaseShape, Self.leaseShape], "leases --json: o1 and the reservation")
        let cooling = try json(try admin(["leases", "--network", "blue", "--state", "cooldown", "--json"]), "cooling")
        XCTAssertEqual(cooling.elements.map(\.keys), [Self.coolingLeaseShape], "leases --state cooldown --json")

        // A host, joined over the protocol as an agent would.
        let secret = try ClusterSecret.load(at: coordinator.secretFile, checkPermissions: true).text
        _ = try await NetleaseConnection.connect(to: coordinator.endpoint, secret: secret) {
            try await $0.join(host: "h1", underlay: IPv4Address(192, 168, 7, 1), networks: ["blue"])
        }
        let hosts = try json(try admin(["hosts", "--json"]), "hosts").elements
        XCTAssertEqual(hosts.map(\.keys), [Self.hostShape], "hosts --json")

        let stats = try json(try admin(["stats", "--json"]), "stats").keys
        XCTAssertEqual(Set(stats.keys), Self.statsKeys, "stats --json")
        for (key, kind) in stats {
            XCTAssertEqual(kind, Self.statsWords.contains(key) ? "string" : "number", "stats --json \(key)")
        }
    }
}
