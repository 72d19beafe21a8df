import ArgumentParser
import XCTest

@testable import netlease

/// `netlease agent` and the commands that talk to a local agent (`attach`, `detach`, `doctor`).
final class AgentCommandTests: XCTestCase {
    static let required = ["agent", "--host", "host1", "--underlay", "10.0.0.1", "--network", "blue"]

    func testDefaults() throws {
        let command = try parse(Self.required, as: Netlease.AgentCommand.self)
        XCTAssertEqual(command.host, "host1")
        XCTAssertEqual(command.underlay, "10.0.0.1")
        XCTAssertEqual(command.network, ["blue"])
        XCTAssertNil(command.coordinator)
        XCTAssertEqual(try command.settings().coordinators, "127.0.0.1:7420")
        XCTAssertNil(command.config)
        XCTAssertNil(command.secretFile)
        XCTAssertEqual(command.socket, "/run/netlease/agent.sock")
        XCTAssertNil(command.socketGroup)
        XCTAssertEqual(command.stateDir, "/var/lib/netlease-agent")
        XCTAssertFalse(command.teardown)
        XCTAssertEqual(command.logLevel, "info")
        XCTAssertNil(command.tls.files.tlsCert)
        XCTAssertNil(command.tls.tlsServerName)
        XCTAssertNil(command.metrics)
    }

    func testEveryOption() throws {
        let command = try parse(
            Self.required + [
                "--network", "red", "--coordinator", "10.0.0.9:7420,10.0.0.10:7420", "--secret-file", "/etc/s",
                "--socket", "/tmp/a.sock", "--socket-group", "docker", "--state-dir", "/tmp/state", "--teardown",
                "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--tls-server-name", "coord",
                "--log-level", "notice", "--metrics", "0.0.0.0:9421",
            ],
            as: Netlease.AgentCommand.self
        )
        XCTAssertEqual(command.network, ["blue", "red"])
        XCTAssertEqual(command.coordinator, "10.0.0.9:7420,10.0.0.10:7420")
        XCTAssertEqual(command.secretFile, "/etc/s")
        XCTAssertEqual(command.socket, "/tmp/a.sock")
        XCTAssertEqual(command.socketGroup, "docker")
        XCTAssertEqual(command.stateDir, "/tmp/state")
        XCTAssertTrue(command.teardown)
        XCTAssertEqual(command.tls.files.tlsCert, "c.pem")
        XCTAssertEqual(command.tls.files.tlsKey, "k.pem")
        XCTAssertEqual(command.tls.files.tlsCa, "ca.pem")
        XCTAssertEqual(command.tls.tlsServerName, "coord")
        XCTAssertEqual(command.logLevel, "notice")
        XCTAssertEqual(command.metrics, "0.0.0.0:9421")
    }

    func testMissingAndBadValuesAreRefused() {
        assertRefused(["agent", "--underlay", "10.0.0.1", "--network", "blue"], "give --host")
        assertRefused(["agent", "--host", "host1", "--network", "blue"], "give --underlay")
        assertRefused(["agent", "--host", "host1", "--underlay", "10.0.0.1"], "give at least one --network")
        assertRefused(Self.required + ["--log-level", "nope"], "unknown --log-level 'nope'")
        assertRefused(
            Self.required + ["--tls-cert", "c.pem", "--tls-ca", "ca.pem"],
            "TLS needs --tls-cert, --tls-key and --tls-ca together; missing: --tls-key"
        )
        assertRefused(
            Self.required + ["--tls-server-name", "coord"],
            "a TLS server name needs --tls-cert, --tls-key and --tls-ca"
        )
        assertRefused(Self.required + ["--metrics", "localhost"], "--metrics needs ADDR:PORT, e.g. 127.0.0.1:9420")
    }

    /// Every option's bad value is a usage error from `validate()` (exit 64) naming the option and the value — before
    /// anything runs, as the coordinator's and the admin commands' are.
    func testEveryBadValueIsAUsageErrorNamingTheOptionAndTheValue() {
        let base = ["agent", "--host", "host1", "--network", "blue"]
        let underlay = base + ["--underlay", "10.0.0.1"]
        let nameRule = "1-63 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit"
        let cases: [([String], String)] = [
            (base + ["--underlay", "10.0.0"], "--underlay '10.0.0' is not an IPv4 address"),
            (base + ["--underlay", "bad"], "--underlay 'bad' is not an IPv4 address"),
            (
                base + ["--underlay", "224.0.0.1"],
                "--underlay '224.0.0.1' is not a unicast address peers can send to (not in 0.0.0.0/8, "
                    + "224.0.0.0/4 or 240.0.0.0/4)"
            ),
            (
                underlay + ["--coordinator", "10.0.0.9:99999"],
                "--coordinator '10.0.0.9:99999': '99999' in '10.0.0.9:99999' is not a port (0-65535)"
            ),
            (underlay + ["--coordinator", ","], "--coordinator ',': no coordinator address given"),
            (
                ["agent", "--host", "host 1", "--underlay", "10.0.0.1", "--network", "blue"],
                "--host 'host 1' is not a host name: \(nameRule)"
            ),
            (underlay + ["--network=-red"], "--network '-red' is not a network name: \(nameRule)"),
            (underlay + ["--network", "blue"], "--network 'blue' is given twice"),
            (underlay + ["--socket", ""], "--socket '' is not a socket path"),
            (
                underlay + ["--socket", "/" + String(repeating: "s", count: 107)],
                "--socket '/\(String(repeating: "s", count: 107))' is 108 bytes long; a unix socket path has at most 107"
            ),
            (underlay + ["--docker-plugin", "/run/x/"], "--docker-plugin '/run/x/' is not a socket path"),
            (
                underlay + ["--docker-plugin", "/run/netlease/agent.sock"],
                "--docker-plugin '/run/netlease/agent.sock' is the --socket path: give another one"
            ),
            (underlay + ["--socket-group", "a:b"], "--socket-group 'a:b' is not a group name"),
            (underlay + ["--state-dir", ""], "--state-dir '' is not a directory path"),
            (underlay + ["--resync=-1"], "--resync -1 must be 0 (off) or a number of seconds"),
            (underlay + ["--resync", "soon"], "The value 'soon' is invalid for '--resync <seconds>'"),
            (underlay + ["--probe-count", "0"], "--probe-count 0 must be 1-10"),
            (underlay + ["--probe-interval", "61"], "--probe-interval 61.0 must be 0-60 seconds"),
            (underlay + ["--probe-wait=-1"], "--probe-wait -1.0 must be 0-60 seconds"),
            (underlay + ["--recheck-wait", "nan"], "--recheck-wait nan must be 0-60 seconds"),
            (underlay + ["--pool-size", "257"], "--pool-size 257 must be 0-256"),
            (underlay + ["--log-level", "loud"], "unknown --log-level 'loud'"),
            (
                underlay + ["--log-format", "xml"],
                "The value 'xml' is invalid for '--log-format <format>'. Please provide one of 'text', 'json' or "
                    + "'journal'."
            ),
            (
                underlay + ["--metrics", "127.0.0.1:70000"],
                "--metrics: '70000' in '127.0.0.1:70000' is not a port (0-65535)"
            ),
        ]
        for (argv, message) in cases { assertRefused(argv, message) }
        // What is fine stays fine: an existing group, the longest socket path.
        XCTAssertNoThrow(
            try parse(
                underlay + ["--socket-group", "root", "--socket", "/" + String(repeating: "s", count: 106)],
                as: Netlease.AgentCommand.self
            )
        )
    }

    func testAttachDetachAndDoctor() throws {
        let attach = try parse(
            ["attach", "--network", "blue", "--netns", "ctr1", "--owner", "c-1"],
            as: Netlease.Attach.self
        )
        XCTAssertEqual(attach.network, "blue")
        XCTAssertEqual(attach.netns, "ctr1")
        XCTAssertEqual(attach.owner, "c-1")
        XCTAssertEqual(attach.ifname, "eth0")
        XCTAssertEqual(attach.agent.socket, "/run/netlease/agent.sock")
        XCTAssertFalse(attach.json)

        let named = try parse(
            [
                "attach", "--network", "blue", "--netns", "/proc/42/ns/net", "--owner", "c-1", "--ifname", "net1",
                "--socket", "/tmp/a.sock", "--json",
            ],
            as: Netlease.Attach.self
        )
        XCTAssertEqual(named.netns, "/proc/42/ns/net")
        XCTAssertEqual(named.ifname, "net1")
        XCTAssertEqual(named.agent.socket, "/tmp/a.sock")
        XCTAssertTrue(named.json)
        XCTAssertEqual(named.namespace, "/proc/42/ns/net")
        assertRefused(
            ["attach", "--network", "blue", "--owner", "c-1"],
            "name the container: --netns NAME|PATH or --pid PID"
        )

        let byPID = try parse(
            ["attach", "--network", "blue", "--pid", "4242", "--owner", "c-1"],
            as: Netlease.Attach.self
        )
        XCTAssertEqual(byPID.pid, 4242)
        XCTAssertNil(byPID.netns)
        XCTAssertEqual(byPID.namespace, "/proc/4242/ns/net")
        assertRefused(
            ["attach", "--network", "blue", "--pid", "4242", "--netns", "ctr1", "--owner", "c-1"],
            "give --netns or --pid, not both"
        )
        assertRefused(
            ["attach", "--network", "blue", "--pid", "1", "--owner", "c-1"],
            "--pid 1 is the host's init: its namespace is the host's own, which attach never plumbs; give a process "
                + "inside the container, e.g. --pid \"$(docker inspect -f '{{.State.Pid}}' C)\""
        )
        assertRefused(["attach", "--network", "blue", "--pid", "0", "--owner", "c-1"], "--pid 0 is not a process id")

        let detach = try parse(["detach", "--network", "blue", "--owner", "c-1"], as: Netlease.Detach.self)
        XCTAssertEqual(detach.network, "blue")
        XCTAssertEqual(detach.owner, "c-1")

        let doctor = try parse(["doctor", "--socket", "/tmp/a.sock", "--json"], as: Netlease.Doctor.self)
        XCTAssertEqual(doctor.agent.socket, "/tmp/a.sock")
        XCTAssertTrue(doctor.json)
    }
}
