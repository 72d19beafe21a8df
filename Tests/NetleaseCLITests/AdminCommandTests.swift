import ArgumentParser
import XCTest

@testable import netlease

/// The admin commands: networks, leases, hosts, statistics and backups, and the client options they share.
final class AdminCommandTests: XCTestCase {
    func testNetworkCreateDefaults() throws {
        let command = try parse(
            ["network", "create", "blue", "--subnet", "172.30.0.0/16"],
            as: Netlease.NetworkCommand.Create.self
        )
        XCTAssertEqual(command.name, "blue")
        XCTAssertEqual(command.subnet, "172.30.0.0/16")
        XCTAssertEqual(command.tunnel, "vxlan")
        XCTAssertNil(command.vni)
        XCTAssertNil(command.bridge)
        XCTAssertNil(command.mtu)
        XCTAssertEqual(command.leaseTtl, 120)
        XCTAssertEqual(command.cooldown, 60)
        XCTAssertEqual(command.exclude, [])
        XCTAssertFalse(command.json)
        XCTAssertNil(command.client.coordinator)
        XCTAssertNil(command.client.secretFile)
        let parsed = try command.parsed()
        XCTAssertEqual(parsed.subnet.description, "172.30.0.0/16")
        XCTAssertEqual(parsed.tunnel.rawValue, "vxlan")
    }

    func testNetworkCreateWithEveryOption() throws {
        let command = try parse(
            [
                "network", "create", "red", "--subnet", "10.40.0.0/24", "--tunnel", "ovs-gre", "--vni", "77",
                "--bridge", "br-red", "--mtu", "1400", "--lease-ttl", "30", "--cooldown", "5", "--exclude", "10.40.0.9",
                "--exclude", "10.40.0.100-10.40.0.120", "--exclude", "10.40.0.128/28", "--json",
                "--coordinator", "10.0.0.9:7420", "--secret-file", "/etc/netlease/secret",
            ],
            as: Netlease.NetworkCommand.Create.self
        )
        XCTAssertEqual(command.name, "red")
        XCTAssertEqual(command.tunnel, "ovs-gre")
        XCTAssertEqual(command.vni, 77)
        XCTAssertEqual(command.bridge, "br-red")
        XCTAssertEqual(command.mtu, 1400)
        XCTAssertEqual(command.leaseTtl, 30)
        XCTAssertEqual(command.cooldown, 5)
        XCTAssertEqual(command.exclude, ["10.40.0.9", "10.40.0.100-10.40.0.120", "10.40.0.128/28"])
        XCTAssertTrue(command.json)
        XCTAssertEqual(command.client.coordinator, "10.0.0.9:7420")
        XCTAssertEqual(command.client.secretFile, "/etc/netlease/secret")
        let endpoint = try command.client.endpoint()
        XCTAssertEqual(endpoint.host, "10.0.0.9")
        XCTAssertEqual(endpoint.port, 7420)
        let parsed = try command.parsed()
        XCTAssertEqual(parsed.tunnel.rawValue, "ovs-gre")
        // A CIDR is kept as the range it covers.
        XCTAssertEqual(
            parsed.excluded.map(\.description),
            ["10.40.0.9", "10.40.0.100-10.40.0.120", "10.40.0.128-10.40.0.143"]
        )
    }

    func testNetworkCreateRefusesValuesThatMeanNothing() {
        let create = ["network", "create", "blue"]
        assertRefused(
            create + ["--subnet", "172.30.0.0"],
            "--subnet '172.30.0.0' is not a CIDR with host bits zero (like 172.30.0.0/16)"
        )
        assertRefused(
            create + ["--subnet", "172.30.0.1/16"],
            "--subnet '172.30.0.1/16' is not a CIDR with host bits zero (like 172.30.0.0/16)"
        )
        assertRefused(
            create + ["--subnet", "172.30.0.0/16", "--tunnel", "ipip"],
            "--tunnel 'ipip' must be vxlan, gre or ovs-gre"
        )
        assertRefused(
            create + ["--subnet", "172.30.0.0/16", "--exclude", "a-b"],
            "--exclude 'a-b' is not an address, A-B range or CIDR"
        )
        assertRefused(create, "Missing expected argument '--subnet <cidr>'")
        assertRefused(["network", "create", "--subnet", "172.30.0.0/16"], "Missing expected argument '<name>'")
    }

    func testNetworkListShowDelete() throws {
        let list = try parse(["network", "list", "--json"], as: Netlease.NetworkCommand.List.self)
        XCTAssertTrue(list.json)
        let show = try parse(["network", "show", "blue"], as: Netlease.NetworkCommand.Show.self)
        XCTAssertEqual(show.name, "blue")
        XCTAssertFalse(show.json)
        let delete = try parse(["network", "delete", "blue"], as: Netlease.NetworkCommand.Delete.self)
        XCTAssertEqual(delete.name, "blue")
    }

    func testLeaseCommands() throws {
        let acquire = try parse(
            [
                "lease", "acquire", "--network", "blue", "--owner", "c-1", "--host", "host1", "--address",
                "172.30.0.9", "--json",
            ],
            as: Netlease.LeaseCommand.Acquire.self
        )
        XCTAssertEqual(acquire.network, "blue")
        XCTAssertEqual(acquire.owner, "c-1")
        XCTAssertEqual(acquire.host, "host1")
        XCTAssertEqual(acquire.address, "172.30.0.9")
        XCTAssertTrue(acquire.json)

        let byOwner = try parse(
            ["lease", "release", "--network", "blue", "--owner", "c-1"],
            as: Netlease.LeaseCommand.Release.self
        )
        XCTAssertEqual(byOwner.owner, "c-1")
        XCTAssertNil(byOwner.address)
        let byAddress = try parse(
            ["lease", "release", "--network", "blue", "--address", "172.30.0.9"],
            as: Netlease.LeaseCommand.Release.self
        )
        XCTAssertNil(byAddress.owner)
        XCTAssertEqual(byAddress.address, "172.30.0.9")

        let reserve = try parse(
            ["lease", "reserve", "--network", "blue", "--address", "172.30.0.5"],
            as: Netlease.LeaseCommand.Reserve.self
        )
        XCTAssertEqual(reserve.address, "172.30.0.5")
        XCTAssertEqual(reserve.note, "")
        let noted = try parse(
            ["lease", "reserve", "--network", "blue", "--address", "172.30.0.5", "--note", "gw"],
            as: Netlease.LeaseCommand.Reserve.self
        )
        XCTAssertEqual(noted.note, "gw")

        let unreserve = try parse(
            ["lease", "unreserve", "--network", "blue", "--address", "172.30.0.5"],
            as: Netlease.LeaseCommand.Unreserve.self
        )
        XCTAssertEqual(unreserve.network, "blue")
        XCTAssertEqual(unreserve.address, "172.30.0.5")
    }

    func testReleaseNeedsExactlyOneOfOwnerAndAddress() {
        assertRefused(["lease", "release", "--network", "blue"], "give exactly one of --owner or --address")
        assertRefused(
            ["lease", "release", "--network", "blue", "--owner", "c-1", "--address", "172.30.0.9"],
            "give exactly one of --owner or --address"
        )
    }

    func testListings() throws {
        let leases = try parse(["leases"], as: Netlease.Leases.self)
        XCTAssertNil(leases.network)
        XCTAssertNil(leases.host)
        XCTAssertNil(leases.state)
        XCTAssertNil(leases.owner)
        XCTAssertFalse(leases.json)
        let filtered = try parse(
            [
                "leases", "--network", "blue", "--host", "host1", "--state", "conflict", "--owner", "c-1", "--json",
            ],
            as: Netlease.Leases.self
        )
        XCTAssertEqual(filtered.network, "blue")
        XCTAssertEqual(filtered.host, "host1")
        XCTAssertEqual(filtered.state, "conflict")
        XCTAssertEqual(filtered.owner, "c-1")
        XCTAssertTrue(filtered.json)

        XCTAssertTrue(try parse(["hosts", "--json"], as: Netlease.Hosts.self).json)
        XCTAssertFalse(try parse(["stats"], as: Netlease.Stats.self).json)
        XCTAssertEqual(try parse(["host", "remove", "host1"], as: Netlease.HostCommand.Remove.self).name, "host1")
        XCTAssertEqual(try parse(["backup", "--out", "/tmp/b.db"], as: Netlease.Backup.self).out, "/tmp/b.db")
        assertRefused(["backup"], "Missing expected argument '--out <file>'")
    }

    func testClientTLSNeedsAllThreeFiles() {
        assertRefused(
            ["hosts", "--tls-cert", "c.pem"],
            "TLS needs --tls-cert (or NETLEASE_TLS_CERT), --tls-key (or NETLEASE_TLS_KEY) and --tls-ca "
                + "(or NETLEASE_TLS_CA) together; missing: --tls-key (or NETLEASE_TLS_KEY), --tls-ca (or "
                + "NETLEASE_TLS_CA)"
        )
        assertRefused(
            ["hosts", "--tls-server-name", "coord"],
            "a TLS server name needs --tls-cert (or NETLEASE_TLS_CERT), --tls-key (or NETLEASE_TLS_KEY) and "
                + "--tls-ca (or NETLEASE_TLS_CA)"
        )
    }

    func testUnknownCommandsAndOptionsAreRefused() {
        assertRefused(["networks"], "Unexpected argument 'networks'")
        assertRefused(["hosts", "--verbose"], "Unknown option '--verbose'")
    }
}

/// Tables show client-supplied text plainly: a bidi override or a tab cannot redraw the columns after it.
final class TextTableTests: XCTestCase {
    func testControlAndFormatCharactersAreShownEscaped() {
        var table = TextTable("OWNER", "HOST")
        table.add(["web\u{202E}1h", "h2"])
        table.add(["a\tb\u{00A0}c d", "h1"])
        let lines = table.rendered.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[1], #"web\u{202E}1h     h2"#)
        XCTAssertEqual(lines[2], #"a\u{9}b\u{A0}c d  h1"#)
        XCTAssertFalse(table.rendered.unicodeScalars.contains { $0.value == 0x202E || $0 == "\t" })
        XCTAssertEqual(TextTable.shown("café ok"), "café ok", "printable text is left alone")
    }
}
