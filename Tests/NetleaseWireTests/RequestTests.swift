import NetleaseCore
import XCTest

@testable import NetleaseWire

private func ip(_ text: String) -> IPv4Address {
    guard let address = IPv4Address(text) else { preconditionFailure("fixture '\(text)' is not an address") }
    return address
}

private func range(_ text: String) -> IPv4Range {
    guard let range = IPv4Range(text) else { preconditionFailure("fixture '\(text)' is not a range") }
    return range
}

private func assertError<T>(
    _ code: ErrorCode,
    _ fragment: String? = nil,
    _ context: String = "",
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () throws -> T
) {
    do {
        let value = try body()
        XCTFail("expected \(code.rawValue), got \(value) \(context)", file: file, line: line)
    } catch let error as NetleaseError {
        XCTAssertEqual(error.code, code, "\(error) \(context)", file: file, line: line)
        if let fragment {
            XCTAssertTrue(
                error.message.contains(fragment),
                "'\(error.message)' lacks '\(fragment)' \(context)",
                file: file,
                line: line
            )
        }
    } catch {
        XCTFail("expected NetleaseError, got \(error) \(context)", file: file, line: line)
    }
}

private let fullSpec = NetworkSpec(
    name: "blue",
    subnet: IPv4Subnet("10.40.0.0/24")!,
    tunnel: .ovsGre,
    vni: 77,
    bridge: "br-blue",
    mtu: 1400,
    leaseTTL: 30,
    cooldown: 0,
    excluded: [range("10.40.0.1-10.40.0.9"), range("10.40.0.200"), range("10.40.0.248/29")]
)

final class RequestTests: XCTestCase {
    // MARK: requests

    /// One or more examples of every request; each must survive render → parse unchanged.
    private var examples: [Request] {
        [
            .ping,
            .auth(secret: "0123456789abcdef"),
            .auth(secret: "with space, 100% and \u{FC}nic\u{F6}de"),
            .auth(secret: ""),
            .quit,
            .networkCreate(fullSpec),
            .networkCreate(NetworkSpec(name: "green", subnet: IPv4Subnet("172.30.0.0/16")!)),
            .networkCreate(NetworkSpec(name: "g", subnet: IPv4Subnet("10.0.0.0/8")!, tunnel: .gre, leaseTTL: 3)),
            .networkList,
            .networkShow(name: "blue"),
            .networkDelete(name: "blue"),
            .join(host: "node-1", underlay: ip("192.168.56.11"), networks: ["blue", "green"]),
            .join(host: "node-1", underlay: ip("192.168.56.11"), networks: []),
            .heartbeat(host: "node-1", epoch: 7),
            .heartbeat(host: "node-1", epoch: 999_999_999_999_999_999),
            .heartbeat(host: "node-1", epoch: -1),
            .hostList,
            .hostRemove(host: "node-1"),
            .acquire(AcquireRequest(network: "blue", owner: "c1")),
            .acquire(
                AcquireRequest(
                    network: "blue",
                    owner: "k8s pod/ns \u{2603}",
                    claim: HostClaim(host: "node-1", epoch: 3),
                    address: ip("10.40.0.50"),
                    ifname: "eth0"
                )
            ),
            .acquire(AcquireRequest(network: "blue", owner: "c1", claim: HostClaim(host: "node-1"))),
            .release(ReleaseRequest(network: "blue", owner: "c1")),
            .release(ReleaseRequest(network: "blue", address: ip("10.40.0.50"))),
            .release(
                ReleaseRequest(
                    network: "blue",
                    owner: "c1",
                    address: ip("10.40.0.50"),
                    claim: HostClaim(host: "node-1", epoch: 2)
                )
            ),
            .release(ReleaseRequest(network: "blue", owner: "c1", claim: HostClaim(host: "node-1"))),
            .reserve(network: "blue", address: ip("10.40.0.254"), note: "gateway VIP \u{2014} do not use"),
            .reserve(network: "blue", address: ip("10.40.0.254"), note: ""),
            .unreserve(network: "blue", address: ip("10.40.0.254")),
            .reportConflict(
                network: "blue",
                address: ip("10.40.0.12"),
                mac: "02:42:ac:11:00:02",
                claim: HostClaim(host: "node-1", epoch: 4)
            ),
            .leaseList(Ledger.LeaseFilter()),
            .leaseList(Ledger.LeaseFilter(network: "blue", host: "node-1", state: .cooldown, owner: "c 1")),
            .leaseList(Ledger.LeaseFilter(host: "")),
            .leaseList(Ledger.LeaseFilter(state: .conflict)),
            .reconcile(
                ReconcileRequest(
                    network: "blue",
                    owner: "c1",
                    address: ip("10.40.0.11"),
                    ifname: "eth0",
                    claim: HostClaim(host: "node-1", epoch: 2)
                )
            ),
            .reconcile(
                ReconcileRequest(
                    network: "blue",
                    owner: "c1",
                    address: ip("10.40.0.11"),
                    claim: HostClaim(host: "node-1", epoch: 2)
                )
            ),
            .watch,
            .backup,
            .stats,
            .hostCredentialSet(host: "node-1", hash: "sha256:00ff:" + String(repeating: "ab", count: 32)),
            .hostCredentialRevoke(host: "node-1"),
            .hostCredentialList,
        ]
    }

    func testEveryRequestRoundTrips() throws {
        for request in examples {
            let rendered = request.rendered
            XCTAssertTrue(rendered.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, rendered)
            XCTAssertTrue(rendered.hasPrefix(request.verb.rawValue), rendered)
            XCTAssertEqual(try Request(line: Substring(rendered)), request, rendered)
            XCTAssertEqual(try Request(line: Substring(rendered + "\r")), request, "CRLF: \(rendered)")
            // Verbs are case-insensitive.
            let verbLength = request.verb.rawValue.count
            let lower = rendered.prefix(verbLength).lowercased() + rendered.dropFirst(verbLength)
            XCTAssertEqual(try Request(line: Substring(lower)), request, lower)
            XCTAssertEqual(try Request(request.line), request, rendered)
        }
        let covered = Set(examples.map(\.verb))
        let all = Set(Request.Verb.allCases)
        XCTAssertEqual(covered, all, "no example of \(all.subtracting(covered))")
    }

    func testRenderedRequestsAreExact() {
        let cases: [(Request, String)] = [
            (.ping, "PING"),
            (.auth(secret: "s e%"), "AUTH secret=s%20e%25"),
            (
                .networkCreate(NetworkSpec(name: "blue", subnet: IPv4Subnet("10.40.0.0/24")!)),
                "NETWORK-CREATE name=blue subnet=10.40.0.0/24 tunnel=vxlan lease-ttl=120 cooldown=60"
            ),
            (
                .networkCreate(fullSpec),
                "NETWORK-CREATE name=blue subnet=10.40.0.0/24 tunnel=ovs-gre vni=77 bridge=br-blue mtu=1400 lease-ttl=30 "
                    + "cooldown=0 exclude=10.40.0.1-10.40.0.9,10.40.0.200,10.40.0.248-10.40.0.255"
            ),
            (
                .join(host: "node1", underlay: ip("192.168.56.11"), networks: ["blue"]),
                "JOIN host=node1 underlay=192.168.56.11 networks=blue"
            ),
            (
                .join(host: "node1", underlay: ip("192.168.56.11"), networks: []),
                "JOIN host=node1 underlay=192.168.56.11"
            ),
            (.heartbeat(host: "node1", epoch: 1), "HEARTBEAT host=node1 epoch=1"),
            (
                .acquire(
                    AcquireRequest(
                        network: "blue",
                        owner: "web 1",
                        claim: HostClaim(host: "node1", epoch: 3),
                        address: ip("10.40.0.50"),
                        ifname: "eth0"
                    )
                ),
                "ACQUIRE network=blue owner=web%201 host=node1 epoch=3 address=10.40.0.50 ifname=eth0"
            ),
            (
                .release(ReleaseRequest(network: "blue", owner: "web-1", claim: HostClaim(host: "node1", epoch: 1))),
                "RELEASE network=blue owner=web-1 host=node1 epoch=1"
            ),
            (
                .release(ReleaseRequest(network: "blue", address: ip("10.40.0.11"))),
                "RELEASE network=blue address=10.40.0.11"
            ),
            (
                .reserve(network: "blue", address: ip("10.40.0.254"), note: "gateway VIP"),
                "RESERVE network=blue address=10.40.0.254 note=gateway%20VIP"
            ),
            (
                .reportConflict(
                    network: "blue",
                    address: ip("10.40.0.12"),
                    mac: "02:42:ac:11:00:02",
                    claim: HostClaim(host: "node1", epoch: 2)
                ),
                "REPORT-CONFLICT network=blue address=10.40.0.12 mac=02:42:ac:11:00:02 host=node1 epoch=2"
            ),
            (
                .leaseList(Ledger.LeaseFilter(network: "blue", state: .cooldown)),
                "LEASE-LIST network=blue state=cooldown"
            ),
            (
                .reconcile(
                    ReconcileRequest(
                        network: "blue",
                        owner: "web-1",
                        address: ip("10.40.0.11"),
                        ifname: "eth0",
                        claim: HostClaim(host: "node1", epoch: 2)
                    )
                ),
                "RECONCILE network=blue owner=web-1 address=10.40.0.11 ifname=eth0 host=node1 epoch=2"
            ),
            (.stats, "STATS"),
        ]
        for (request, text) in cases {
            XCTAssertEqual(request.rendered, text)
        }
    }

    func testParsesHandWrittenRequests() throws {
        let cases: [(String, Request)] = [
            ("ping", .ping),
            ("  PING  ", .ping),
            (
                "NETWORK-CREATE name=blue subnet=10.40.0.0/24 exclude=10.40.0.1-10.40.0.9 cooldown=30",
                .networkCreate(
                    NetworkSpec(
                        name: "blue",
                        subnet: IPv4Subnet("10.40.0.0/24")!,
                        cooldown: 30,
                        excluded: [range("10.40.0.1-10.40.0.9")]
                    )
                )
            ),
            (
                "network-create cooldown=5 subnet=10.40.0.0/24 name=blue exclude=10.40.0.0/30,,10.40.0.7 vni=0 mtu=0",
                .networkCreate(
                    NetworkSpec(
                        name: "blue",
                        subnet: IPv4Subnet("10.40.0.0/24")!,
                        cooldown: 5,
                        excluded: [range("10.40.0.0-10.40.0.3"), range("10.40.0.7")]
                    )
                )
            ),
            (
                "NETWORK-CREATE name=blue subnet=10.40.0.0/24 exclude= bridge=",
                .networkCreate(NetworkSpec(name: "blue", subnet: IPv4Subnet("10.40.0.0/24")!))
            ),
            (
                "join host=node1 underlay=192.168.56.11 networks=blue,,green",
                .join(host: "node1", underlay: ip("192.168.56.11"), networks: ["blue", "green"])
            ),
            (
                "JOIN host=node1 underlay=192.168.56.11 networks=",
                .join(host: "node1", underlay: ip("192.168.56.11"), networks: [])
            ),
            ("HEARTBEAT epoch=007 host=node1", .heartbeat(host: "node1", epoch: 7)),
            (
                "RELEASE network=blue address=10.40.0.5",
                .release(ReleaseRequest(network: "blue", address: ip("10.40.0.5")))
            ),
            (
                "ACQUIRE network=blue owner=c1 ifname=",
                .acquire(AcquireRequest(network: "blue", owner: "c1"))
            ),
            ("LEASE-LIST host=", .leaseList(Ledger.LeaseFilter(host: ""))),
            ("lease-list state=active", .leaseList(Ledger.LeaseFilter(state: .active))),
            ("AUTH secret=", .auth(secret: "")),
            ("AUTH secret=%41%42", .auth(secret: "AB")),
            (
                "RESERVE network=blue address=10.40.0.254 note=",
                .reserve(
                    network: "blue",
                    address: ip("10.40.0.254"),
                    note: ""
                )
            ),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try Request(line: Substring(text)), expected, text)
        }
    }

    func testMalformedRequestsAreBadRequests() {
        let long = "AUTH secret=" + String(repeating: "s", count: WireLimits.maxLineBytes)
        let cases: [(String, String)] = [
            ("", "empty line"),
            ("   ", "empty line"),
            ("FROB", "unknown verb 'FROB'"),
            ("frob x=1", "unknown verb 'FROB'"),
            ("NETWORK_CREATE name=a", "is not a verb"),
            ("PING x=1", "PING does not take field 'x'"),
            ("QUIT x=", "QUIT does not take field 'x'"),
            ("STATS now=1", "STATS does not take field 'now'"),
            ("WATCH since=1", "WATCH does not take field 'since'"),
            ("HOST-LIST x=1", "HOST-LIST does not take field 'x'"),
            ("NETWORK-LIST name=a", "NETWORK-LIST does not take field 'name'"),
            ("PING x", "not a key=value field"),
            ("AUTH Secret=x", "not a field name"),
            ("AUTH secret=a secret=b", "given twice"),
            ("AUTH secret=%zz", "not followed by two hex digits"),
            ("AUTH secret=%C3%28", "not valid UTF-8"),
            ("AUTH secret=x\u{1}", "byte 0x1"),
            ("AUTH", "missing field 'secret'"),
            (long, "line longer than 8192 bytes"),
            // NETWORK-CREATE
            ("NETWORK-CREATE name=a", "missing field 'subnet'"),
            ("NETWORK-CREATE subnet=10.0.0.0/8", "missing field 'name'"),
            ("NETWORK-CREATE name= subnet=10.0.0.0/8", "field 'name' must not be empty"),
            ("NETWORK-CREATE name=a subnet=10.0.0.1/8", "field 'subnet' must be a CIDR"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/33", "field 'subnet' must be a CIDR"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0", "field 'subnet' must be a CIDR"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/08", "field 'subnet' must be a CIDR"),
            ("NETWORK-CREATE name=a subnet=", "field 'subnet' must be a CIDR"),
            ("NETWORK-CREATE name=a subnet=010.0.0.0/8", "field 'subnet' must be a CIDR"),
            (
                "NETWORK-CREATE name=a subnet=10.0.0.0/8 tunnel=ipip",
                "field 'tunnel' must be one of vxlan, gre, ovs-gre"
            ),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 tunnel=VXLAN", "field 'tunnel' must be one of"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 tunnel=", "field 'tunnel' must be one of"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 vni=-1", "vni -1 is out of range"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 vni=16777216", "vni 16777216 is out of range"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 vni=abc", "field 'vni' must be a whole number"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 mtu=1.5", "field 'mtu' must be a whole number"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 lease-ttl=+3", "field 'lease-ttl' must be a whole number"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 cooldown=", "field 'cooldown' must be a whole number"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 exclude=10.0.0.9-10.0.0.1", "has '10.0.0.9-10.0.0.1'"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 exclude=10.0.0.1,bogus", "has 'bogus'"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 exclude=10.0.0.1%2010.0.0.2", "field 'exclude' has"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 color=red", "NETWORK-CREATE does not take field 'color'"),
            ("NETWORK-CREATE name=a subnet=10.0.0.0/8 created=1", "does not take field 'created'"),
            // NETWORK-SHOW / DELETE
            ("NETWORK-SHOW", "missing field 'name'"),
            ("NETWORK-SHOW name=", "field 'name' must not be empty"),
            ("NETWORK-DELETE name=a extra=1", "NETWORK-DELETE does not take field 'extra'"),
            // JOIN / HEARTBEAT / HOST-REMOVE
            ("JOIN host=h", "missing field 'underlay'"),
            ("JOIN underlay=1.2.3.4", "missing field 'host'"),
            ("JOIN host= underlay=1.2.3.4", "field 'host' must not be empty"),
            ("JOIN host=h underlay=1.2.3", "field 'underlay' must be an IPv4 address, got '1.2.3'"),
            ("JOIN host=h underlay=1.2.3.256", "field 'underlay' must be an IPv4 address"),
            ("JOIN host=h underlay=1.2.3.4 epoch=1", "JOIN does not take field 'epoch'"),
            ("HEARTBEAT host=h epoch=abc", "field 'epoch' must be a whole number, got 'abc'"),
            ("HEARTBEAT host=h epoch=1.5", "field 'epoch' must be a whole number"),
            ("HEARTBEAT host=h epoch=", "field 'epoch' must be a whole number"),
            ("HEARTBEAT host=h epoch=0x10", "field 'epoch' must be a whole number"),
            ("HEARTBEAT host=h epoch=1234567890123456789", "field 'epoch' must be a whole number"),
            ("HEARTBEAT host=h", "missing field 'epoch'"),
            ("HEARTBEAT epoch=1", "missing field 'host'"),
            ("HEARTBEAT host= epoch=1", "field 'host' must not be empty"),
            ("HOST-REMOVE", "missing field 'host'"),
            ("HOST-REMOVE host=", "field 'host' must not be empty"),
            // ACQUIRE
            ("ACQUIRE network=n", "missing field 'owner'"),
            ("ACQUIRE owner=o", "missing field 'network'"),
            ("ACQUIRE network= owner=o", "field 'network' must not be empty"),
            ("ACQUIRE network=n owner=", "field 'owner' must not be empty"),
            ("ACQUIRE network=n owner=o epoch=2", "field 'epoch' needs field 'host'"),
            ("ACQUIRE network=n owner=o host=", "field 'host' must not be empty"),
            ("ACQUIRE network=n owner=o host=h epoch=x", "field 'epoch' must be a whole number"),
            ("ACQUIRE network=n owner=o address=10.0.0.256", "field 'address' must be an IPv4 address"),
            ("ACQUIRE network=n owner=o address=10.0.0.01", "field 'address' must be an IPv4 address"),
            ("ACQUIRE network=n owner=o address=10.0.0.0/24", "field 'address' must be an IPv4 address"),
            ("ACQUIRE network=n owner=o address=", "field 'address' must be an IPv4 address"),
            ("ACQUIRE network=n owner=o foo=1", "ACQUIRE does not take field 'foo'"),
            // RELEASE
            ("RELEASE network=n", "RELEASE needs field 'owner' or 'address'"),
            ("RELEASE network=n host=h epoch=1", "RELEASE needs field 'owner' or 'address'"),
            ("RELEASE network=n address=x", "field 'address' must be an IPv4 address"),
            ("RELEASE owner=o", "missing field 'network'"),
            ("RELEASE network=n owner=o epoch=1", "field 'epoch' needs field 'host'"),
            ("RELEASE network=n owner=o ifname=eth0", "RELEASE does not take field 'ifname'"),
            // RESERVE / UNRESERVE
            ("RESERVE network=n", "missing field 'address'"),
            ("RESERVE address=10.0.0.1", "missing field 'network'"),
            ("RESERVE network=n address=10.0.0.01", "field 'address' must be an IPv4 address"),
            ("RESERVE network=n address=10.0.0.1 owner=o", "RESERVE does not take field 'owner'"),
            ("UNRESERVE network=n address=", "field 'address' must be an IPv4 address"),
            ("UNRESERVE network=n", "missing field 'address'"),
            ("UNRESERVE network=n address=10.0.0.1 note=x", "UNRESERVE does not take field 'note'"),
            // REPORT-CONFLICT
            ("REPORT-CONFLICT network=n address=10.0.0.5 mac=aa host=h", "needs fields 'host' and 'epoch'"),
            ("REPORT-CONFLICT network=n address=10.0.0.5 mac=aa", "needs fields 'host' and 'epoch'"),
            ("REPORT-CONFLICT network=n address=10.0.0.5 host=h epoch=1", "missing field 'mac'"),
            ("REPORT-CONFLICT network=n address=10.0.0.5 mac= host=h epoch=1", "field 'mac' must not be empty"),
            ("REPORT-CONFLICT network=n mac=aa host=h epoch=1", "missing field 'address'"),
            ("REPORT-CONFLICT network=n address=1.2.3 mac=aa host=h epoch=1", "must be an IPv4 address"),
            // LEASE-LIST
            ("LEASE-LIST state=bogus", "field 'state' must be one of active, reserved, conflict, cooldown"),
            ("LEASE-LIST state=ACTIVE", "field 'state' must be one of"),
            ("LEASE-LIST state=", "field 'state' must be one of"),
            ("LEASE-LIST address=10.0.0.1", "LEASE-LIST does not take field 'address'"),
            // RECONCILE
            ("RECONCILE network=n owner=o address=10.0.0.5 host=h", "RECONCILE needs fields 'host' and 'epoch'"),
            ("RECONCILE network=n owner=o address=10.0.0.5", "RECONCILE needs fields 'host' and 'epoch'"),
            ("RECONCILE network=n owner=o host=h epoch=1", "missing field 'address'"),
            ("RECONCILE network=n address=10.0.0.5 host=h epoch=1", "missing field 'owner'"),
            ("RECONCILE network=n owner=o address=10.0.0.5 host=h epoch=1 mac=x", "does not take field 'mac'"),
        ]
        for (text, fragment) in cases {
            assertError(.badRequest, fragment, text.count > 80 ? "long line" : text) {
                try Request(line: Substring(text))
            }
        }
    }

    func testVerbPermissions() {
        let readOnly: Set<Request.Verb> = [
            .ping, .auth, .quit, .networkList, .networkShow, .hostList, .leaseList, .stats, .watch, .backup,
        ]
        let beforeAuth: Set<Request.Verb> = [.ping, .auth, .quit]
        for request in examples {
            let verb = request.verb
            XCTAssertEqual(request.changesState, !readOnly.contains(verb), "changesState of \(verb)")
            XCTAssertEqual(request.allowedBeforeAuth, beforeAuth.contains(verb), "allowedBeforeAuth of \(verb)")
            XCTAssertEqual(request.needsAdmin, request.changesState || verb == .backup, "needsAdmin of \(verb)")
        }
    }

    // MARK: replies

    func testReplyLines() {
        let cases: [(Reply, [String])] = [
            (.ok(["pong": "1"]), ["OK pong=1"]),
            (.ok(Fields()), ["OK"]),
            (.ok(["note": "gateway VIP", "mac": ""]), ["OK note=gateway%20VIP mac="]),
            (
                .list(
                    header: ["host": "node1", "count": "99", "epoch": "2"],
                    tag: "LEASE",
                    records: [["network": "blue", "owner": "a b"], ["network": "green"]]
                ),
                ["OK count=2 host=node1 epoch=2", "LEASE network=blue owner=a%20b", "LEASE network=green"]
            ),
            (.list(header: Fields(), tag: "HOST", records: []), ["OK count=0"]),
            (
                .error(NetleaseError(.poolExhausted, "no free address in 'blue' (10.0.0.0/30): leased=2 free=0")),
                ["ERR pool-exhausted no free address in 'blue' (10.0.0.0/30): leased=2 free=0"]
            ),
            (.error(NetleaseError(.badRequest, "bad\nline\rhere\tx\u{7F}")), ["ERR bad-request bad line here x "]),
            (
                .error(NetleaseError(.conflict, "owner 'caf\u{E9}' holds 10.0.0.5")),
                ["ERR conflict owner 'caf%C3%A9' holds 10.0.0.5"]
            ),
            (.error(NetleaseError(.notFound, "")), ["ERR not-found "]),
        ]
        for (reply, lines) in cases {
            XCTAssertEqual(reply.lines, lines)
            XCTAssertEqual(reply.rendered, lines.map { $0 + "\n" }.joined())
            for line in reply.lines {
                XCTAssertTrue(line.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, "printable ASCII: \(line)")
            }
        }
    }

    func testParseHeadTable() throws {
        let cases: [(String, Reply.Head)] = [
            ("OK", .ok(Fields(), recordCount: nil)),
            ("OK pong=1", .ok(["pong": "1"], recordCount: nil)),
            ("OK count=2 host=node1 epoch=3", .ok(["count": "2", "host": "node1", "epoch": "3"], recordCount: 2)),
            ("OK count=0", .ok(["count": "0"], recordCount: 0)),
            ("OK count=100000000", .ok(["count": "100000000"], recordCount: 100_000_000)),
            ("ok count=3\r", .ok(["count": "3"], recordCount: 3)),
            ("OK note=a%20b", .ok(["note": "a b"], recordCount: nil)),
            (
                "ERR pool-exhausted no free address in 'blue' (10.0.0.0/30): leased=2",
                .error(NetleaseError(.poolExhausted, "no free address in 'blue' (10.0.0.0/30): leased=2"))
            ),
            ("ERR not-found", .error(NetleaseError(.notFound, ""))),
            ("ERR not-found ", .error(NetleaseError(.notFound, ""))),
            (
                "ERR stale-epoch epoch 1 of host 'h' is stale (current 2); join again\r",
                .error(NetleaseError(.staleEpoch, "epoch 1 of host 'h' is stale (current 2); join again"))
            ),
            ("ERR bad-request  two  spaces ", .error(NetleaseError(.badRequest, " two  spaces "))),
            (
                "ERR frobnicated it broke",
                .error(NetleaseError(.internalError, "unknown error code 'frobnicated': it broke"))
            ),
            ("ERR Pool-Exhausted x", .error(NetleaseError(.internalError, "unknown error code 'Pool-Exhausted': x"))),
        ]
        for (text, head) in cases {
            XCTAssertEqual(try Reply.parseHead(Substring(text)), head, text.debugDescription)
        }
    }

    func testParseHeadRejectsMalformedHeads() {
        let cases: [(String, ErrorCode, String?)] = [
            ("OK count=-1", .internalError, "out of range"),
            ("OK count=100000001", .internalError, "out of range"),
            ("OK count=abc", .badRequest, "whole number"),
            ("OK a=1 a=2", .badRequest, "given twice"),
            ("HELLO", .internalError, "unexpected reply line 'HELLO'"),
            ("LEASE network=blue", .internalError, "unexpected reply line"),
            ("ERR", .internalError, "unexpected reply line"),
            ("", .badRequest, "empty line"),
            ("OK note=%", .badRequest, "two hex digits"),
        ]
        for (text, code, fragment) in cases {
            assertError(code, fragment, text) { try Reply.parseHead(Substring(text)) }
        }
    }

    func testEveryErrorCodeRoundTrips() throws {
        XCTAssertTrue(ErrorCode.allCases.count >= 12)
        for code in ErrorCode.allCases {
            let error = NetleaseError(code, "something about '\(code.rawValue)': 3 of 4")
            let lines = Reply.error(error).lines
            XCTAssertEqual(lines, ["ERR \(code.rawValue) something about '\(code.rawValue)': 3 of 4"])
            XCTAssertEqual(try Reply.parseHead(Substring(lines[0])), .error(error), code.rawValue)
        }
    }

    func testOkAndListRepliesRoundTrip() throws {
        let records: [Fields] = [
            WireCodec.fields(lease: sampleLease), ["network": "green", "note": "x y", "mac": ""], Fields(),
        ]
        let list = Reply.list(header: ["host": "node1", "epoch": "5"], tag: WireCodec.leaseTag, records: records)
        let lines = list.lines
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(
            try Reply.parseHead(Substring(lines[0])),
            .ok(["count": "3", "host": "node1", "epoch": "5"], recordCount: 3)
        )
        for (line, record) in zip(lines.dropFirst(), records) {
            XCTAssertEqual(try Reply.parseRecord(Substring(line), tag: WireCodec.leaseTag), record, line)
        }
        assertError(.internalError, "expected a HOST record") {
            try Reply.parseRecord(Substring(lines[1]), tag: WireCodec.hostTag)
        }
        let single = Reply.ok(WireCodec.fields(lease: sampleLease))
        XCTAssertEqual(
            try Reply.parseHead(Substring(single.lines[0])),
            .ok(WireCodec.fields(lease: sampleLease), recordCount: nil)
        )
    }

    // MARK: greeting

    func testGreeting() throws {
        XCTAssertEqual(WireLimits.protocolName, "NETLEASE")
        XCTAssertEqual(WireLimits.protocolVersion, 1)
        XCTAssertEqual(Greeting(authRequired: true).line, "NETLEASE version=1 auth=required")
        XCTAssertEqual(Greeting(authRequired: false).line, "NETLEASE version=1 auth=none")
        for greeting in [
            Greeting(authRequired: true), Greeting(authRequired: false),
            Greeting(version: 7, authRequired: false),
        ] {
            XCTAssertEqual(try Greeting(line: Substring(greeting.line)), greeting, greeting.line)
        }
        let parsed: [(String, Int, Bool)] = [
            ("netlease version=2 auth=none\r", 2, false),
            ("NETLEASE version=1", 1, true),  // no auth field: assume it is required
            ("NETLEASE version=1 auth=weird", 1, true),
            ("NETLEASE auth=none version=3", 3, false),
        ]
        for (text, version, auth) in parsed {
            XCTAssertEqual(try Greeting(line: Substring(text)), Greeting(version: version, authRequired: auth), text)
        }
        let foreign: [(String, ErrorCode)] = [
            ("HELLO version=1", .internalError),
            ("NETLEASE auth=none", .internalError),
            ("NETLEASE version=x", .badRequest),
            ("", .badRequest),
            ("SSH-2.0-OpenSSH_9.6", .badRequest),
            ("HTTP/1.1 400 Bad Request", .badRequest),
        ]
        for (text, code) in foreign {
            assertError(code, nil, text) { try Greeting(line: Substring(text)) }
        }
    }

    // MARK: records

    private var sampleLease: Lease {
        Lease(
            network: "blue",
            address: ip("10.40.0.11"),
            prefix: 24,
            state: .cooldown,
            host: "node1",
            owner: "web 1",
            ifname: "eth0",
            note: "\u{FC}ber note 100%",
            mac: "02:42:ac:11:00:02",
            isStatic: false,
            created: 1_795_914_656_781,
            renewed: 1_795_914_656_784,
            until: 1_795_914_686_784
        )
    }

    func testLeaseFieldsRoundTrip() throws {
        let bridge = Lease(
            network: "blue",
            address: ip("10.40.0.10"),
            prefix: 24,
            state: .active,
            host: "node1",
            owner: "bridge:node1",
            ifname: "nl-blue",
            isStatic: false,
            created: 1_795_914_656_777,
            renewed: 1_795_914_656_777
        )
        XCTAssertEqual(
            LineFormat.render(Line(WireCodec.leaseTag, WireCodec.fields(lease: bridge))),
            "LEASE network=blue address=10.40.0.10/24 state=active host=node1 owner=bridge:node1 ifname=nl-blue "
                + "note= mac= static=0 created=1795914656777 renewed=1795914656777 until=0"
        )
        let reserved = Lease(
            network: "blue",
            address: ip("10.40.0.254"),
            prefix: 24,
            state: .reserved,
            note: "gateway VIP",
            created: 5,
            renewed: 5
        )
        for lease in [bridge, sampleLease, reserved] {
            let line = LineFormat.render(Line(WireCodec.leaseTag, WireCodec.fields(lease: lease)))
            let fields = try Reply.parseRecord(Substring(line), tag: WireCodec.leaseTag)
            XCTAssertEqual(try WireCodec.lease(from: fields), lease, line)
        }
        let bad: [(Fields, String)] = [
            (["network": "n", "address": "10.0.0.1", "state": "active"], "is not A.B.C.D/PREFIX"),
            (["network": "n", "address": "10.0.0.1/33", "state": "active"], "is not A.B.C.D/PREFIX"),
            (["network": "n", "address": "10.0.0.1/x", "state": "active"], "is not A.B.C.D/PREFIX"),
            (["network": "n", "address": "10.0.0.01/24", "state": "active"], "is not A.B.C.D/PREFIX"),
            (["network": "n", "address": "10.0.0.1/24", "state": "gone"], "unknown lease state 'gone'"),
            (["network": "n", "address": "10.0.0.1/24"], "missing field 'state'"),
            (["address": "10.0.0.1/24", "state": "active"], "missing field 'network'"),
            (["network": "n", "address": "10.0.0.1/24", "state": "active", "created": "x"], "whole number"),
        ]
        for (fields, fragment) in bad {
            assertError(.badRequest, fragment, "\(fields.pairs)") { try WireCodec.lease(from: fields) }
        }
    }

    func testHostFieldsRoundTrip() throws {
        let hosts = [
            HostRecord(
                name: "node1",
                underlay: ip("192.168.56.11"),
                epoch: 3,
                state: .up,
                networks: ["blue", "green"],
                joined: 1_795_914_656_777,
                lastHeartbeat: 1_795_914_656_900
            ),
            HostRecord(
                name: "node2",
                underlay: ip("192.168.56.12"),
                epoch: 9,
                state: .lost,
                networks: [],
                joined: 1,
                lastHeartbeat: 2
            ),
        ]
        XCTAssertEqual(
            LineFormat.render(Line(WireCodec.hostTag, WireCodec.fields(host: hosts[0]))),
            "HOST name=node1 underlay=192.168.56.11 epoch=3 state=up networks=blue,green joined=1795914656777 "
                + "heartbeat=1795914656900"
        )
        for host in hosts {
            let line = LineFormat.render(Line(WireCodec.hostTag, WireCodec.fields(host: host)))
            XCTAssertEqual(try WireCodec.host(from: Reply.parseRecord(Substring(line), tag: WireCodec.hostTag)), host)
        }
        var missing = WireCodec.fields(host: hosts[0])
        missing["underlay"] = nil
        assertError(.badRequest, "missing field 'underlay'") { try WireCodec.host(from: missing) }
        var badState = WireCodec.fields(host: hosts[0])
        badState["state"] = "down"
        assertError(.badRequest, "unknown host state 'down'") { try WireCodec.host(from: badState) }
        var badEpoch = WireCodec.fields(host: hosts[0])
        badEpoch["epoch"] = "three"
        assertError(.badRequest, "field 'epoch' must be a whole number") { try WireCodec.host(from: badEpoch) }
    }

    func testNetworkFieldsRoundTrip() throws {
        let spec = NetworkSpec(
            name: "blue",
            subnet: IPv4Subnet("10.40.0.0/24")!,
            vni: 42,
            bridge: "nl-blue",
            leaseTTL: 120,
            cooldown: 30,
            excluded: [range("10.40.0.1-10.40.0.9")],
            created: 1_795_914_656_776
        )
        let counts = PoolCounts(usable: 245, active: 2, reserved: 1, conflict: 0, cooldown: 1)
        let fields = WireCodec.fields(network: spec, counts: counts)
        XCTAssertEqual(
            LineFormat.render(Line("OK", fields)),
            "OK name=blue subnet=10.40.0.0/24 tunnel=vxlan vni=42 bridge=nl-blue lease-ttl=120 cooldown=30 "
                + "exclude=10.40.0.1-10.40.0.9 mtu=0 created=1795914656776 usable=245 active=2 reserved=1 conflict=0 "
                + "cooldown-count=1 free=241"
        )
        let parsed = try LineFormat.parse(Substring(LineFormat.render(Line("NETWORK", fields)))).fields
        XCTAssertEqual(try WireCodec.networkSpec(from: parsed, requireAll: true), spec)
        XCTAssertEqual(try WireCodec.counts(from: parsed), counts)
        for other in [
            fullSpec,
            NetworkSpec(
                name: "g",
                subnet: IPv4Subnet("172.30.0.0/16")!,
                vni: 43,
                bridge: "nl-g",
                created: 9
            ),
        ] {
            let f = WireCodec.fields(network: other)
            XCTAssertEqual(try WireCodec.networkSpec(from: f, requireAll: true), other)
            XCTAssertNil(try WireCodec.counts(from: f), "no counts were given")
        }
        var noCreated = fields
        noCreated["created"] = nil
        assertError(.badRequest, "missing field 'created'") {
            try WireCodec.networkSpec(from: noCreated, requireAll: true)
        }
        XCTAssertEqual(try WireCodec.networkSpec(from: noCreated, requireAll: false).created, 0)
    }

    // MARK: events and the local API

    func testEventsRoundTrip() throws {
        let host = HostRecord(
            name: "node1",
            underlay: ip("192.168.56.11"),
            epoch: 3,
            state: .lost,
            networks: ["blue"],
            joined: 10,
            lastHeartbeat: 20
        )
        let spec = NetworkSpec(
            name: "blue",
            subnet: IPv4Subnet("10.40.0.0/24")!,
            vni: 42,
            bridge: "nl-blue",
            created: 30
        )
        let events: [Event] = [
            .host(host), .hostRemoved("node1"), .network(spec), .network(fullSpec),
            .networkDeleted("blue"), .keepalive,
        ]
        for event in events {
            XCTAssertTrue(event.rendered.hasSuffix("\n"))
            let line = event.rendered.dropLast()
            XCTAssertTrue(line.hasPrefix("EVENT kind="), String(line))
            XCTAssertEqual(try Event(line: line), event, String(line))
        }
        XCTAssertEqual(Event.keepalive.rendered, "EVENT kind=keepalive\n")
        XCTAssertEqual(Event.hostRemoved("n 1").rendered, "EVENT kind=host-removed name=n%201\n")
        let bad: [(String, String)] = [
            ("EVENT kind=bogus", "unknown event kind 'bogus'"),
            ("EVENT", "missing field 'kind'"),
            ("OK kind=keepalive", "not an EVENT line"),
            ("EVENT kind=host-removed", "missing field 'name'"),
            ("EVENT kind=host name=n", "missing field"),
        ]
        for (text, fragment) in bad {
            assertError(.badRequest, fragment, text) { try Event(line: Substring(text)) }
        }
    }

    func testLocalRequestsRoundTrip() throws {
        let requests: [LocalRequest] = [
            .ping, .quit, .acquire(network: "blue", owner: "c1", ifname: "eth0"),
            .acquire(network: "blue", owner: "pod a/b", ifname: "net1"), .release(network: "blue", owner: "c1"),
            .attach(network: "blue", owner: "c1", netns: "/var/run/netns/c 1", ifname: "eth0"),
            .detach(network: "blue", owner: "c1"), .leaseList(network: nil), .leaseList(network: "blue"), .doctor,
            .acquire(network: "blue", owner: "c1", ifname: "eth0", address: IPv4Address(10, 0, 0, 9)),
            .network(name: "blue"),
        ]
        for request in requests {
            XCTAssertEqual(try LocalRequest(line: Substring(request.rendered)), request, request.rendered)
        }
        XCTAssertEqual(Set(requests.map { $0.line.verb }), Set(LocalRequest.Verb.allCases.map(\.rawValue)))
        XCTAssertEqual(
            try LocalRequest(line: "acquire network=blue owner=c1"),
            .acquire(network: "blue", owner: "c1", ifname: "eth0"),
            "ifname defaults to eth0"
        )
        let bad: [(String, String)] = [
            ("JOIN host=h underlay=1.2.3.4", "unknown verb 'JOIN' for the agent's local API"),
            ("ACQUIRE network=blue owner=c1 ifname=this-is-too-long", "not a valid interface name"),
            ("ACQUIRE network=blue owner=c1 ifname=", "not a valid interface name"),
            ("ATTACH network=blue owner=c1", "missing field 'netns'"),
            ("ATTACH network=blue owner=c1 netns=", "field 'netns' must not be empty"),
            ("RELEASE network=blue", "missing field 'owner'"),
            ("RELEASE network=blue owner=c1 address=10.0.0.1", "RELEASE does not take field 'address'"),
            ("LEASE-LIST network=blue host=h", "LEASE-LIST does not take field 'host'"),
            ("DOCTOR fix=1", "DOCTOR does not take field 'fix'"),
            ("ACQUIRE network=blue owner=c1 address=10.0.0.256", "address '10.0.0.256' is not an IPv4 address"),
            ("NETWORK", "missing field 'network'"),
            ("NETWORK network=blue owner=c1", "NETWORK does not take field 'owner'"),
        ]
        for (text, fragment) in bad {
            assertError(.badRequest, fragment, text) { try LocalRequest(line: Substring(text)) }
        }
        let checks = [
            DoctorCheck(name: "bridge", ok: true, detail: "nl-blue up, mtu 1450"),
            DoctorCheck(name: "tunnel", ok: false, detail: ""),
        ]
        for check in checks {
            XCTAssertEqual(try DoctorCheck(fields: check.fields), check)
        }
        XCTAssertEqual(checks[1].fields, ["name": "tunnel", "status": "fail", "detail": ""])
        assertError(.badRequest, "missing field 'status'") { try DoctorCheck(fields: ["name": "x"]) }
    }
}
