import NetleaseCore
import XCTest

@testable import NetleaseWire

/// The edge of invariant 10: a request either carries every identifier in its one canonical byte form, or it is
/// refused with bad-request naming the field. Nothing is folded silently.
final class IdentifierParsingTests: XCTestCase {
    func testNonCanonicalIdentifiersAreRefusedNamingTheField() {
        let cases: [(line: String, field: String)] = [
            // NUL and other control bytes, percent-encoded so that the line itself is printable.
            ("ACQUIRE network=blue owner=web%00x", "owner"),
            ("ACQUIRE network=blue owner=web%0Ax", "owner"),
            ("ACQUIRE network=blue owner=web%7F", "owner"),
            ("ACQUIRE network=blue owner=web%C2%85", "owner"),  // NEL, a C1 control
            ("ACQUIRE network=blue owner=a%E2%80%A8b", "owner"),  // LINE SEPARATOR
            ("ACQUIRE network=blue owner=a%EF%BF%BE", "owner"),  // a noncharacter
            ("ACQUIRE network=blue owner=a%CD%B8", "owner"),  // U+0378, unassigned
            // Not in NFC: the same text also has another spelling.
            ("ACQUIRE network=blue owner=cafe%CC%81", "owner"),
            ("ACQUIRE network=blue owner=%E2%84%AA8s", "owner"),  // KELVIN SIGN
            ("RELEASE network=blue owner=cafe%CC%81", "owner"),
            ("RECONCILE network=blue owner=cafe%CC%81 address=10.0.0.5 host=h epoch=1", "owner"),
            ("LEASE-LIST owner=cafe%CC%81", "owner"),
            ("ACQUIRE network=blue owner=" + String(repeating: "o", count: 257), "owner"),
            // Names: ASCII grammar only.
            ("ACQUIRE network=%E2%84%AA8s owner=c1", "network"),
            ("ACQUIRE network=-blue owner=c1", "network"),
            ("RELEASE network=bl%00ue owner=c1", "network"),
            ("RESERVE network=caf%C3%A9 address=10.0.0.1", "network"),
            ("UNRESERVE network=a%20b address=10.0.0.1", "network"),
            ("REPORT-CONFLICT network=%E2%84%AA address=10.0.0.5 mac=aa host=h epoch=1", "network"),
            ("RECONCILE network=%E2%84%AA owner=o address=10.0.0.5 host=h epoch=1", "network"),
            ("LEASE-LIST network=%E2%84%AA", "network"),
            ("NETWORK-SHOW name=%E2%84%AA8s", "name"),
            ("NETWORK-DELETE name=%E2%84%AA8s", "name"),
            ("NETWORK-CREATE name=%E2%84%AA8s subnet=10.0.0.0/24", "name"),
            ("JOIN host=h underlay=192.0.2.1 networks=blue,%E2%84%AA8s", "networks"),
            ("JOIN host=%E2%84%AA1 underlay=192.0.2.1", "host"),
            ("HEARTBEAT host=%E2%84%AA1 epoch=1", "host"),
            ("HOST-REMOVE host=%E2%84%AA1", "host"),
            ("ACQUIRE network=blue owner=c1 host=node%00 epoch=1", "host"),
            ("LEASE-LIST host=%E2%84%AA1", "host"),
            // Interface names: what the kernel and the tools take literally.
            ("ACQUIRE network=blue owner=c1 ifname=eth%25d", "ifname"),
            ("ACQUIRE network=blue owner=c1 ifname=-eth0", "ifname"),
            ("ACQUIRE network=blue owner=c1 ifname=eth%E2%84%AA", "ifname"),
            ("RECONCILE network=blue owner=o address=10.0.0.5 ifname=a%2Fb host=h epoch=1", "ifname"),
            ("NETWORK-CREATE name=blue subnet=10.0.0.0/24 bridge=nl%25d", "bridge"),
            ("NETWORK-CREATE name=blue subnet=10.0.0.0/24 bridge=br%00", "bridge"),
            // Free text.
            ("RESERVE network=blue address=10.0.0.1 note=a%0Ab", "note"),
            ("RESERVE network=blue address=10.0.0.1 note=cafe%CC%81", "note"),
            ("REPORT-CONFLICT network=blue address=10.0.0.5 mac=aa%00 host=h epoch=1", "mac"),
            ("REPORT-CONFLICT network=blue address=10.0.0.5 mac=aa%1B%5B0m host=h epoch=1", "mac"),
        ]
        for c in cases {
            do {
                let request = try Request(line: Substring(c.line))
                XCTFail("\(c.line): accepted as \(request)")
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .badRequest, "\(c.line): \(error)")
                XCTAssertTrue(
                    error.message.contains("'\(c.field)'"),
                    "\(c.line): '\(error.message)' lacks '\(c.field)'"
                )
            } catch {
                XCTFail("\(c.line): \(error)")
            }
        }
    }

    /// A list's canonical form has each name once: a repeat is dropped, the first place counts.
    func testRepeatedNetworksInAJoinCountOnce() throws {
        let request = try Request(line: "JOIN host=h underlay=192.0.2.1 networks=blue,green,blue,,green")
        XCTAssertEqual(request, .join(host: "h", underlay: IPv4Address(192, 0, 2, 1), networks: ["blue", "green"]))
    }

    /// What is canonical passes untouched: the parsed value has exactly the bytes that were sent.
    func testCanonicalIdentifiersRoundTripByteForByte() throws {
        let owners = [
            "caf\u{E9}", "k8s pod/ns \u{2603}", "\u{FB01}le", "\u{1F600}", "Kx", "a=b", "100%",
            String(repeating: "\u{E9}", count: 128),
        ]
        for owner in owners {
            let line = "ACQUIRE network=Blue.1 owner=\(LineFormat.escape(owner)) ifname=eth0.100"
            guard case .acquire(let request) = try Request(line: Substring(line)) else {
                return XCTFail("\(line) is not an ACQUIRE")
            }
            XCTAssertEqual(Array(request.owner.utf8), Array(owner.utf8), line)
            XCTAssertEqual(request.network, "Blue.1")
            XCTAssertEqual(request.ifname, "eth0.100")
        }
    }
}
