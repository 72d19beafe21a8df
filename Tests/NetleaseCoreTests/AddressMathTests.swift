import XCTest

@testable import NetleaseCore

/// Table-driven tests of IPv4 address, subnet and range parsing and arithmetic.
final class AddressMathTests: XCTestCase {
    private func ip(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> IPv4Address {
        guard let address = IPv4Address(text) else {
            XCTFail("test fixture '\(text)' is not an address", file: file, line: line)
            return IPv4Address(0)
        }
        return address
    }

    private func net(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> IPv4Subnet {
        guard let subnet = IPv4Subnet(text) else {
            XCTFail("test fixture '\(text)' is not a subnet", file: file, line: line)
            return IPv4Subnet(network: IPv4Address(0), prefix: 0)!
        }
        return subnet
    }

    // MARK: IPv4Address

    func testParsesValidAddresses() {
        let cases: [(text: String, value: UInt32)] = [
            ("0.0.0.0", 0),
            ("255.255.255.255", 0xFFFF_FFFF),
            ("1.2.3.4", 0x0102_0304),
            ("10.0.0.1", 0x0A00_0001),
            ("172.30.5.9", 0xAC1E_0509),
            ("192.168.100.200", 0xC0A8_64C8),
            ("100.10.0.99", 0x640A_0063),
            ("9.99.199.255", 0x0963_C7FF),
            ("127.0.0.1", 0x7F00_0001),
            ("224.0.0.251", 0xE000_00FB),
        ]
        for (text, value) in cases {
            let parsed = IPv4Address(text)
            XCTAssertEqual(parsed?.value, value, "parse '\(text)'")
            XCTAssertEqual(parsed?.description, text, "render '\(text)'")
            XCTAssertEqual(IPv4Address(value).description, text, "render value of '\(text)'")
        }
    }

    func testRejectsMalformedAddresses() {
        let cases: [(text: String, why: String)] = [
            ("", "empty"),
            ("1", "one octet"),
            ("1.2", "two octets"),
            ("1.2.3", "missing octet"),
            ("1.2.3.4.5", "five octets"),
            ("1.2.3.", "trailing dot"),
            ("1.2.3.4.", "trailing dot after four octets"),
            (".1.2.3", "leading dot"),
            ("1..2.3", "empty octet"),
            ("...", "only dots"),
            ("256.0.0.1", "first octet 256"),
            ("1.2.3.256", "last octet 256"),
            ("1.300.3.4", "octet 300"),
            ("999.1.1.1", "octet 999"),
            ("1000.1.1.1", "four digits"),
            ("01.2.3.4", "leading zero"),
            ("1.2.3.04", "leading zero in last octet"),
            ("1.02.3.4", "leading zero in middle octet"),
            ("1.2.3.00", "double zero"),
            ("00.0.0.0", "double zero first"),
            ("0001.1.1.1", "many leading zeros"),
            (" 1.2.3.4", "leading space"),
            ("1.2.3.4 ", "trailing space"),
            ("1. 2.3.4", "inner space"),
            ("1.2.3.4\n", "trailing newline"),
            ("1.2.3.4\0", "trailing NUL"),
            ("\t1.2.3.4", "leading tab"),
            ("1.2.3.-4", "negative octet"),
            ("+1.2.3.4", "plus sign"),
            ("1.2.3.4/24", "CIDR suffix"),
            ("1.2.3.4:80", "port suffix"),
            ("a.b.c.d", "letters"),
            ("1.2.3.0x1", "hex"),
            ("1,2,3,4", "commas"),
            ("\u{FF11}.2.3.4", "full-width digit"),
            ("\u{0661}.2.3.4", "Arabic-Indic digit"),
            ("4294967295", "plain integer"),
            ("::1", "IPv6"),
        ]
        for (text, why) in cases {
            XCTAssertNil(IPv4Address(text), "'\(text.debugDescription)' (\(why)) must not parse")
        }
    }

    func testParsesSubstringSlice() {
        let text = "[10.20.30.40]"
        let slice = text.dropFirst().dropLast()
        XCTAssertEqual(IPv4Address(slice), IPv4Address(10, 20, 30, 40))
        XCTAssertNil(IPv4Address(text.dropFirst()), "the closing bracket must still be rejected")
    }

    func testOctetsInitAndAccessor() {
        let address = IPv4Address(172, 30, 1, 254)
        XCTAssertEqual(address.value, 0xAC1E_01FE)
        let o = address.octets
        XCTAssertEqual([o.0, o.1, o.2, o.3], [172, 30, 1, 254])
        XCTAssertEqual(address.description, "172.30.1.254")
        let high = IPv4Address(255, 0, 128, 1).octets
        XCTAssertEqual([high.0, high.1, high.2, high.3], [255, 0, 128, 1])
    }

    func testOrderingIsNumericNotLexical() {
        let cases: [(String, String)] = [
            ("9.0.0.0", "10.0.0.0"),
            ("10.0.0.2", "10.0.0.10"),
            ("10.0.0.255", "10.0.1.0"),
            ("0.0.0.0", "0.0.0.1"),
            ("127.255.255.255", "128.0.0.0"),
        ]
        for (smaller, larger) in cases {
            XCTAssertLessThan(ip(smaller), ip(larger), "\(smaller) < \(larger)")
            XCTAssertFalse(ip(larger) < ip(smaller), "not \(larger) < \(smaller)")
        }
        let sorted = ["10.0.0.10", "10.0.0.2", "9.255.255.255", "10.0.0.1"].map { ip($0) }.sorted()
        XCTAssertEqual(sorted.map(\.description), ["9.255.255.255", "10.0.0.1", "10.0.0.2", "10.0.0.10"])
    }

    // MARK: IPv4Subnet parsing

    func testParsesValidSubnets() {
        let cases:
            [(
                text: String, network: String, prefix: Int, mask: UInt32, broadcast: String, size: UInt64,
                hostCount: UInt64
            )] = [
                ("10.0.0.0/8", "10.0.0.0", 8, 0xFF00_0000, "10.255.255.255", 1 << 24, (1 << 24) - 2),
                ("172.30.0.0/16", "172.30.0.0", 16, 0xFFFF_0000, "172.30.255.255", 65_536, 65_534),
                ("192.168.1.0/24", "192.168.1.0", 24, 0xFFFF_FF00, "192.168.1.255", 256, 254),
                ("192.168.1.16/28", "192.168.1.16", 28, 0xFFFF_FFF0, "192.168.1.31", 16, 14),
                ("192.168.1.4/30", "192.168.1.4", 30, 0xFFFF_FFFC, "192.168.1.7", 4, 2),
                ("192.168.1.4/31", "192.168.1.4", 31, 0xFFFF_FFFE, "192.168.1.5", 2, 0),
                ("192.168.1.5/32", "192.168.1.5", 32, 0xFFFF_FFFF, "192.168.1.5", 1, 0),
                ("0.0.0.0/0", "0.0.0.0", 0, 0, "255.255.255.255", 1 << 32, (1 << 32) - 2),
                ("255.255.255.255/32", "255.255.255.255", 32, 0xFFFF_FFFF, "255.255.255.255", 1, 0),
                ("128.0.0.0/1", "128.0.0.0", 1, 0x8000_0000, "255.255.255.255", 1 << 31, (1 << 31) - 2),
                ("10.1.2.0/23", "10.1.2.0", 23, 0xFFFF_FE00, "10.1.3.255", 512, 510),
            ]
        for c in cases {
            guard let subnet = IPv4Subnet(c.text) else {
                XCTFail("'\(c.text)' must parse")
                continue
            }
            XCTAssertEqual(subnet.network.description, c.network, c.text)
            XCTAssertEqual(subnet.prefix, c.prefix, c.text)
            XCTAssertEqual(subnet.mask, c.mask, c.text)
            XCTAssertEqual(subnet.broadcast.description, c.broadcast, c.text)
            XCTAssertEqual(subnet.size, c.size, c.text)
            XCTAssertEqual(subnet.hostCount, c.hostCount, c.text)
            XCTAssertEqual(subnet.description, c.text, c.text)
        }
    }

    func testRejectsMalformedSubnets() {
        let cases: [(text: String, why: String)] = [
            ("", "empty"),
            ("10.0.0.0", "no prefix"),
            ("10.0.0.0/", "empty prefix"),
            ("/8", "no address"),
            ("10.0.0.1/8", "host bits set"),
            ("10.0.0.1/24", "host bits set in last octet"),
            ("192.168.1.1/31", "host bit set in /31"),
            ("192.168.1.5/30", "host bits set in /30"),
            ("172.30.1.0/16", "host bits set in /16"),
            ("0.0.0.1/0", "host bits set in /0"),
            ("10.0.0.0/33", "prefix 33"),
            ("10.0.0.0/100", "three-digit prefix"),
            ("10.0.0.0/-1", "negative prefix"),
            ("10.0.0.0/+8", "plus sign"),
            ("10.0.0.0/08", "leading zero in prefix"),
            ("10.0.0.0/00", "double zero prefix"),
            ("10.0.0.0/8/8", "two slashes"),
            ("10.0.0.0//8", "double slash"),
            ("10.0.0.0 /8", "space before slash"),
            ("10.0.0.0/ 8", "space after slash"),
            ("10.0.0.0/8 ", "trailing space"),
            (" 10.0.0.0/8", "leading space"),
            ("10.0.0/8", "missing octet"),
            ("010.0.0.0/8", "leading zero in address"),
            ("256.0.0.0/8", "octet 256"),
            ("10.0.0.0/a", "letter prefix"),
            ("10.0.0.0/8a", "letter after prefix"),
            ("10.0.0.0/\u{0663}", "Arabic-Indic digit prefix"),
            ("10.0.0.0/\u{FF18}", "full-width digit prefix"),
            ("10.0.0.0-10.0.0.255", "range, not CIDR"),
        ]
        for (text, why) in cases {
            XCTAssertNil(IPv4Subnet(text), "'\(text.debugDescription)' (\(why)) must not parse")
        }
    }

    func testMemberwiseInitValidatesPrefixAndHostBits() {
        let cases: [(network: String, prefix: Int, valid: Bool)] = [
            ("10.0.0.0", 8, true),
            ("10.0.0.0", 0, false),  // 10.x has bits outside a /0 mask
            ("0.0.0.0", 0, true),
            ("10.0.0.0", -1, false),
            ("10.0.0.0", 33, false),
            ("10.0.0.0", 32, true),
            ("10.0.0.128", 25, true),
            ("10.0.0.128", 24, false),
            ("10.0.0.3", 31, false),
            ("10.0.0.2", 31, true),
        ]
        for c in cases {
            let subnet = IPv4Subnet(network: ip(c.network), prefix: c.prefix)
            XCTAssertEqual(subnet != nil, c.valid, "\(c.network)/\(c.prefix)")
            if let subnet {
                XCTAssertEqual(subnet.network, ip(c.network))
                XCTAssertEqual(subnet.prefix, c.prefix)
            }
        }
    }

    func testMaskTable() {
        let cases: [(Int, UInt32)] = [
            (0, 0), (1, 0x8000_0000), (8, 0xFF00_0000), (9, 0xFF80_0000), (16, 0xFFFF_0000), (24, 0xFFFF_FF00),
            (30, 0xFFFF_FFFC), (31, 0xFFFF_FFFE), (32, 0xFFFF_FFFF),
        ]
        for (prefix, mask) in cases {
            XCTAssertEqual(IPv4Subnet.mask(prefix), mask, "/\(prefix)")
        }
    }

    func testFirstAndLastHost() {
        let cases: [(subnet: String, first: String, last: String)] = [
            ("10.1.0.0/16", "10.1.0.1", "10.1.255.254"),
            ("192.168.7.0/24", "192.168.7.1", "192.168.7.254"),
            ("192.168.7.8/29", "192.168.7.9", "192.168.7.14"),
            ("192.168.7.8/30", "192.168.7.9", "192.168.7.10"),
        ]
        for c in cases {
            let subnet = net(c.subnet)
            XCTAssertEqual(subnet.firstHost.description, c.first, c.subnet)
            XCTAssertEqual(subnet.lastHost.description, c.last, c.subnet)
            XCTAssertEqual(UInt64(subnet.lastHost.value - subnet.firstHost.value) + 1, subnet.hostCount, c.subnet)
        }
    }

    func testPrefixRangeForNetworks() {
        XCTAssertEqual(IPv4Subnet.prefixRange, 8...30)
        XCTAssertFalse(IPv4Subnet.prefixRange.contains(7))
        XCTAssertFalse(IPv4Subnet.prefixRange.contains(31))
        XCTAssertFalse(IPv4Subnet.prefixRange.contains(32))
    }

    // MARK: contains / isHostAddress / overlaps

    func testContainsAndIsHostAddress() {
        let cases: [(subnet: String, address: String, contains: Bool, isHost: Bool)] = [
            ("10.1.0.0/16", "10.1.0.0", true, false),  // network
            ("10.1.0.0/16", "10.1.255.255", true, false),  // broadcast
            ("10.1.0.0/16", "10.1.0.1", true, true),
            ("10.1.0.0/16", "10.1.255.254", true, true),
            ("10.1.0.0/16", "10.1.128.0", true, true),  // a .0 inside a /16 is a host address
            ("10.1.0.0/16", "10.1.3.255", true, true),
            ("10.1.0.0/16", "10.0.255.255", false, false),  // just below
            ("10.1.0.0/16", "10.2.0.0", false, false),  // just above
            ("192.168.1.0/24", "192.168.2.1", false, false),
            ("192.168.1.4/30", "192.168.1.3", false, false),
            ("192.168.1.4/30", "192.168.1.4", true, false),
            ("192.168.1.4/30", "192.168.1.5", true, true),
            ("192.168.1.4/30", "192.168.1.6", true, true),
            ("192.168.1.4/30", "192.168.1.7", true, false),
            ("192.168.1.4/30", "192.168.1.8", false, false),
            // /31 and /32: no address is a host address (network == first, broadcast == last)
            ("192.168.1.4/31", "192.168.1.4", true, false),
            ("192.168.1.4/31", "192.168.1.5", true, false),
            ("192.168.1.4/31", "192.168.1.6", false, false),
            ("192.168.1.5/32", "192.168.1.5", true, false),
            ("192.168.1.5/32", "192.168.1.4", false, false),
            ("192.168.1.5/32", "192.168.1.6", false, false),
            ("0.0.0.0/0", "0.0.0.0", true, false),
            ("0.0.0.0/0", "255.255.255.255", true, false),
            ("0.0.0.0/0", "8.8.8.8", true, true),
        ]
        for c in cases {
            let subnet = net(c.subnet)
            XCTAssertEqual(subnet.contains(ip(c.address)), c.contains, "\(c.subnet) contains \(c.address)")
            XCTAssertEqual(subnet.isHostAddress(ip(c.address)), c.isHost, "\(c.subnet) host \(c.address)")
        }
    }

    func testOverlapsIsSymmetric() {
        let cases: [(String, String, Bool)] = [
            ("10.0.0.0/8", "10.1.0.0/16", true),  // contains
            ("10.1.0.0/16", "10.1.0.0/16", true),  // identical
            ("10.1.0.0/16", "10.2.0.0/16", false),  // neighbours
            ("10.1.0.0/16", "10.1.255.0/24", true),  // inner at the end
            ("10.1.0.0/16", "10.0.255.0/24", false),  // just before
            ("10.1.0.0/16", "10.2.0.0/24", false),  // just after
            ("192.168.0.0/23", "192.168.1.0/24", true),
            ("192.168.0.0/24", "192.168.1.0/24", false),
            ("192.168.1.4/30", "192.168.1.8/30", false),
            ("192.168.1.4/30", "192.168.1.6/31", true),
            ("192.168.1.4/30", "192.168.1.7/32", true),
            ("192.168.1.4/30", "192.168.1.8/32", false),
            ("0.0.0.0/0", "203.0.113.0/24", true),
            ("172.16.0.0/12", "172.32.0.0/16", false),
            ("172.16.0.0/12", "172.31.255.0/24", true),
        ]
        for (a, b, expected) in cases {
            XCTAssertEqual(net(a).overlaps(net(b)), expected, "\(a) overlaps \(b)")
            XCTAssertEqual(net(b).overlaps(net(a)), expected, "\(b) overlaps \(a)")
        }
    }

    func testSubnetEqualityAndHashing() {
        XCTAssertEqual(net("10.1.0.0/16"), IPv4Subnet(network: IPv4Address(10, 1, 0, 0), prefix: 16))
        XCTAssertNotEqual(net("10.1.0.0/16"), net("10.1.0.0/24"))
        XCTAssertEqual(Set(["10.1.0.0/16", "10.1.0.0/16", "10.2.0.0/16"].map { net($0) }).count, 2)
    }

    // MARK: IPv4Range

    func testParsesRanges() {
        let cases: [(text: String, first: String, last: String, count: UInt64, description: String)] = [
            ("10.0.0.5-10.0.0.9", "10.0.0.5", "10.0.0.9", 5, "10.0.0.5-10.0.0.9"),
            ("10.0.0.5-10.0.0.5", "10.0.0.5", "10.0.0.5", 1, "10.0.0.5"),
            ("10.0.0.7", "10.0.0.7", "10.0.0.7", 1, "10.0.0.7"),
            ("10.0.0.0/30", "10.0.0.0", "10.0.0.3", 4, "10.0.0.0-10.0.0.3"),
            ("10.0.0.9/32", "10.0.0.9", "10.0.0.9", 1, "10.0.0.9"),
            ("10.0.0.250-10.0.1.5", "10.0.0.250", "10.0.1.5", 12, "10.0.0.250-10.0.1.5"),
            ("0.0.0.0-255.255.255.255", "0.0.0.0", "255.255.255.255", 1 << 32, "0.0.0.0-255.255.255.255"),
            ("0.0.0.0/0", "0.0.0.0", "255.255.255.255", 1 << 32, "0.0.0.0-255.255.255.255"),
        ]
        for c in cases {
            guard let range = IPv4Range(c.text) else {
                XCTFail("'\(c.text)' must parse")
                continue
            }
            XCTAssertEqual(range.first.description, c.first, c.text)
            XCTAssertEqual(range.last.description, c.last, c.text)
            XCTAssertEqual(range.count, c.count, c.text)
            XCTAssertEqual(range.description, c.description, c.text)
            XCTAssertEqual(IPv4Range(range.description), range, "description of '\(c.text)' parses back")
        }
    }

    func testRejectsMalformedRanges() {
        let cases: [(text: String, why: String)] = [
            ("", "empty"),
            ("10.0.0.9-10.0.0.5", "reversed"),
            ("10.0.0.5-", "missing end"),
            ("-10.0.0.5", "missing start"),
            ("-", "only dash"),
            ("10.0.0.5 - 10.0.0.9", "spaces around dash"),
            ("10.0.0.5-10.0.0.9-10.0.0.12", "two dashes"),
            ("10.0.0.5-10.0.0", "end missing octet"),
            ("10.0.0.1/24", "CIDR with host bits"),
            ("10.0.0.0/33", "CIDR prefix 33"),
            ("10.0.0.0/24-10.0.1.0/24", "two CIDRs"),
            ("10.0.0.05", "leading zero"),
            ("10.0.0.256", "octet 256"),
            ("10.0.0.1,10.0.0.2", "list"),
        ]
        for (text, why) in cases {
            XCTAssertNil(IPv4Range(text), "'\(text)' (\(why)) must not parse")
        }
        XCTAssertNil(IPv4Range(first: ip("10.0.0.2"), last: ip("10.0.0.1")))
        XCTAssertNotNil(IPv4Range(first: ip("10.0.0.2"), last: ip("10.0.0.2")))
    }

    func testRangeContainsIsInclusive() {
        guard let range = IPv4Range("10.0.0.5-10.0.0.9") else { return XCTFail("fixture") }
        let cases: [(String, Bool)] = [
            ("10.0.0.4", false), ("10.0.0.5", true), ("10.0.0.7", true), ("10.0.0.9", true), ("10.0.0.10", false),
            ("0.0.0.0", false), ("255.255.255.255", false),
        ]
        for (address, expected) in cases {
            XCTAssertEqual(range.contains(ip(address)), expected, address)
        }
    }

    // MARK: properties over many values

    /// Every value's rendering parses back to itself; no other spelling of the same value parses.
    func testRenderParseRoundTripOverSeededValues() {
        var generator = SeededGenerator(seed: 0x5EED_1234)
        for _ in 0..<5_000 {
            let value = UInt32.random(in: .min ... .max, using: &generator)
            let address = IPv4Address(value)
            XCTAssertEqual(IPv4Address(address.description), address, address.description)
            let prefix = Int.random(in: 0...32, using: &generator)
            let network = IPv4Address(value & IPv4Subnet.mask(prefix))
            guard let subnet = IPv4Subnet(network: network, prefix: prefix) else {
                XCTFail("\(network)/\(prefix) must be a subnet")
                continue
            }
            XCTAssertEqual(IPv4Subnet(subnet.description), subnet, subnet.description)
            XCTAssertTrue(subnet.contains(address), "\(subnet) contains \(address)")
            XCTAssertTrue(subnet.contains(subnet.network) && subnet.contains(subnet.broadcast), subnet.description)
            XCTAssertEqual(UInt64(subnet.broadcast.value - subnet.network.value) + 1, subnet.size, subnet.description)
            if prefix < 32 {
                // Setting any host bit of the network address makes the CIDR invalid.
                let hostBit = UInt32(1) << UInt32(Int.random(in: 0..<(32 - prefix), using: &generator))
                XCTAssertNil(IPv4Subnet("\(IPv4Address(network.value | hostBit))/\(prefix)"))
            }
        }
    }
}

/// SplitMix64: a tiny deterministic generator so property tests repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
