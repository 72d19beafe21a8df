import NetleaseCore
import NetleaseTesting
import XCTest

@testable import HostNetwork

final class ARPPacketTests: XCTestCase {
    private let ours: [UInt8] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55]
    private let theirs: [UInt8] = [0x0a, 0xbb, 0xcc, 0x0d, 0xee, 0xff]
    private let candidate = IPv4Address(172, 30, 0, 50)

    func testProbeIsABroadcastRequestWithZeroSenderAddress() {
        let frame = ARPPacket.probe(senderMAC: ours, target: candidate)
        XCTAssertEqual(frame.count, 60)
        XCTAssertEqual(Array(frame[0..<6]), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        XCTAssertEqual(Array(frame[6..<12]), ours)
        XCTAssertEqual(Array(frame[12..<22]), [0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01])
        XCTAssertEqual(Array(frame[22..<28]), ours)
        XCTAssertEqual(Array(frame[28..<38]), [UInt8](repeating: 0, count: 10))
        XCTAssertEqual(Array(frame[38..<42]), [172, 30, 0, 50])
        let parsed = ARPPacket.parse(frame[...])
        XCTAssertEqual(parsed?.operation, ARPPacket.request)
        XCTAssertEqual(parsed?.senderIP, IPv4Address(0))
        XCTAssertEqual(parsed?.targetIP, candidate)
    }

    private func frame(
        operation: UInt16,
        senderMAC: [UInt8],
        senderIP: IPv4Address,
        targetIP: IPv4Address
    )
        -> [UInt8]
    {
        var frame = ARPPacket.probe(senderMAC: senderMAC, target: targetIP)
        frame[21] = UInt8(operation)
        let o = senderIP.octets
        frame.replaceSubrange(28..<32, with: [o.0, o.1, o.2, o.3])
        return Array(frame[0..<42])
    }

    func testConflicts() {
        let other = IPv4Address(172, 30, 0, 51)
        let cases: [(String, [UInt8], String?)] = [
            (
                "reply from the holder",
                frame(operation: 2, senderMAC: theirs, senderIP: candidate, targetIP: IPv4Address(0)),
                "0a:bb:cc:0d:ee:ff"
            ),
            (
                "request from the holder", frame(operation: 1, senderMAC: theirs, senderIP: candidate, targetIP: other),
                "0a:bb:cc:0d:ee:ff"
            ),
            ("our own frame", frame(operation: 2, senderMAC: ours, senderIP: candidate, targetIP: other), nil),
            (
                "someone else's address", frame(operation: 2, senderMAC: theirs, senderIP: other, targetIP: candidate),
                nil
            ),
            (
                "another host probing",
                frame(
                    operation: 1,
                    senderMAC: theirs,
                    senderIP: IPv4Address(0),
                    targetIP: candidate
                ), nil
            ),
            (
                "truncated",
                Array(frame(operation: 2, senderMAC: theirs, senderIP: candidate, targetIP: other)[0..<41]),
                nil
            ),
        ]
        for (name, bytes, expected) in cases {
            XCTAssertEqual(ARPPacket.conflictingMAC(in: bytes[...], candidate: candidate, ownMAC: ours), expected, name)
        }
        var ipv6 = frame(operation: 2, senderMAC: theirs, senderIP: candidate, targetIP: other)
        ipv6[12] = 0x86
        ipv6[13] = 0xdd
        XCTAssertNil(ARPPacket.parse(ipv6[...]))
    }

    func testScriptedProberAnswersFromItsTable() async throws {
        let prober = ScriptedARPProber(answers: [candidate: "0a:bb:cc:0d:ee:ff"])
        let taken = try await prober.probe(candidate, on: "nl0")
        let free = try await prober.probe(IPv4Address(172, 30, 0, 60), on: "nl0")
        XCTAssertEqual(taken, "0a:bb:cc:0d:ee:ff")
        XCTAssertNil(free)
        XCTAssertEqual(prober.probes.map(\.address), [candidate, IPv4Address(172, 30, 0, 60)])
    }

    func testOptionsDefaultToRFC5227() {
        let options = ARPProbeOptions()
        XCTAssertEqual(options.probes, 3)
        XCTAssertEqual(options.interval, .seconds(1)...(.seconds(2)))
        XCTAssertEqual(options.wait, .seconds(2))
        XCTAssertEqual(options.longest, .seconds(6))
        XCTAssertEqual(ARPProbeOptions(probes: 0).probes, 1)
        XCTAssertEqual(ARPProbeOptions.recheck.longest, .milliseconds(300))
    }

    func testAClaimIsAnyRequestOrReplyWithASenderAddressButNotAProbeOrOurOwn() {
        let ours: [UInt8] = [0x02, 0, 0, 0, 0, 1]
        let theirs: [UInt8] = [0x0a, 0xbb, 0xcc, 0x0d, 0xee, 0xff]
        // A probe from them (sender IP 0): not a claim.
        XCTAssertNil(ARPPacket.claim(in: ARPPacket.probe(senderMAC: theirs, target: candidate)[...], ownMAC: ours))
        var frame = ARPPacket.probe(senderMAC: theirs, target: IPv4Address(172, 30, 0, 9))
        frame.replaceSubrange(28..<32, with: [172, 30, 0, 50])
        XCTAssertEqual(
            ARPPacket.claim(in: frame[...], ownMAC: ours),
            ARPClaim(address: candidate, mac: "0a:bb:cc:0d:ee:ff")
        )
        XCTAssertNil(ARPPacket.claim(in: frame[...], ownMAC: theirs), "our own frames claim nothing")
    }
}

final class ObservationParsingTests: XCTestCase {
    func testParsesRealIproute2Output() throws {
        // Captured from iproute2 6.1 (`ip -d -j addr show`), trimmed.
        let json = #"""
            [{"ifindex":3,"ifname":"vx1","flags":["BROADCAST","MULTICAST","UP"],"mtu":1450,"master":"nl0",
              "address":"02:3b:2c:02:a6:4a","linkinfo":{"info_kind":"vxlan","info_data":{"id":42,"local":"10.0.0.1",
              "port_range":{"low":0,"high":0},"port":4789,"learning":false,"ttl":0,"df":"unset"},
              "info_slave_kind":"bridge"},"addr_info":[]},
             {"ifindex":2,"link_index":5,"ifname":"eth0","flags":["BROADCAST"],"mtu":1400,"link_netnsid":0,
              "linkinfo":{"info_kind":"veth"},"addr_info":[{"family":"inet","local":"172.30.0.11","prefixlen":16},
              {"family":"inet6","local":"fe80::1","prefixlen":64}]}]
            """#
        let links = try ObservedLink.parseList(json)
        XCTAssertEqual(links.count, 2)
        XCTAssertEqual(links[0].kind, "vxlan")
        XCTAssertEqual(links[0].vni, 42)
        XCTAssertEqual(links[0].local, IPv4Address(10, 0, 0, 1))
        XCTAssertEqual(links[0].dstPort, 4789)
        XCTAssertEqual(links[0].learning, false)
        XCTAssertEqual(links[0].master, "nl0")
        XCTAssertTrue(links[0].isUp)
        XCTAssertEqual(links[1].peerIndex, 5)
        XCTAssertFalse(links[1].isUp)
        XCTAssertEqual(links[1].addresses, [InterfaceAddress(address: IPv4Address(172, 30, 0, 11), prefix: 16)])
    }

    func testGarbageIsAnUnexpectedOutputError() {
        XCTAssertThrowsError(try ObservedLink.parseList("Device does not exist", command: ["ip", "x"])) { error in
            XCTAssertEqual((error as? HostNetworkError)?.code, .unexpectedOutput)
        }
        XCTAssertEqual(try ObservedLink.parseList(""), [])
    }

    func testFDBKeepsOnlyAllZerosEntries() throws {
        let json =
            #"[{"mac":"00:00:00:00:00:00","dst":"10.0.0.2","flags":["self"],"state":"permanent"},"#
            + #"{"mac":"aa:bb:cc:dd:ee:ff","dst":"10.0.0.7","flags":["self"]},"#
            + #"{"mac":"02:00:00:00:00:0b","master":"nl0"}]"#
        XCTAssertEqual(try HostSnapshot.parseFDBDestinations(json), [IPv4Address(10, 0, 0, 2)])
    }

    func testOVSInterfaces() throws {
        let json =
            #"{"data":[["gre-b",["map",[["remote_ip","10.0.0.2"]]]],["gre-z",["map",[]]]],"#
            + #""headings":["name","options"]}"#
        XCTAssertEqual(
            try OVSSnapshot.parseGREInterfaces(json),
            ["gre-b": IPv4Address(10, 0, 0, 2), "gre-z": IPv4Address(0)]
        )
    }
}
