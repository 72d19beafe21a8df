import NetleaseCore
import XCTest

@testable import NetleaseWire

/// Asserts that parsing `text` fails with `bad-request` (and a message containing `fragment`, when given).
func assertBadLine(_ text: String, _ fragment: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try LineFormat.parse(Substring(text)), "\(text.debugDescription)", file: file, line: line) {
        guard let error = $0 as? NetleaseError else {
            return XCTFail("not a NetleaseError: \($0)", file: file, line: line)
        }
        XCTAssertEqual(error.code, .badRequest, "\(text.debugDescription): \(error)", file: file, line: line)
        if let fragment {
            XCTAssertTrue(
                error.message.contains(fragment),
                "\(text.debugDescription): '\(error.message)' lacks "
                    + "'\(fragment)'",
                file: file,
                line: line
            )
        }
    }
}

final class LineFormatTests: XCTestCase {
    // MARK: parsing

    func testParsesVerbsAndFields() throws {
        let cases: [(text: String, verb: String, fields: [(String, String)])] = [
            ("PING", "PING", []),
            ("ping", "PING", []),
            ("Lease-List", "LEASE-LIST", []),
            ("network-create", "NETWORK-CREATE", []),
            ("123", "123", []),
            ("  PING  ", "PING", []),
            ("PING\r", "PING", []),
            ("ACQUIRE network=blue owner=c1", "ACQUIRE", [("network", "blue"), ("owner", "c1")]),
            ("ACQUIRE   network=blue    owner=c1   ", "ACQUIRE", [("network", "blue"), ("owner", "c1")]),
            ("X k=v\r", "X", [("k", "v")]),
            ("X a=b=c", "X", [("a", "b=c")]),
            ("X a==", "X", [("a", "=")]),
            ("X note=", "X", [("note", "")]),
            ("X c=3 a=1 b=2", "X", [("c", "3"), ("a", "1"), ("b", "2")]),
            ("X 9-a=1 z-9=2", "X", [("9-a", "1"), ("z-9", "2")]),
            ("X k=%20", "X", [("k", " ")]),
            ("X k=%25", "X", [("k", "%")]),
            ("X k=%c3%a9", "X", [("k", "\u{E9}")]),
            ("X k=%C3%A9t%C3%A9", "X", [("k", "\u{E9}t\u{E9}")]),
            ("X k=%41%62c", "X", [("k", "Abc")]),
            ("X k=%00", "X", [("k", "\u{0}")]),
            ("X k=%0A%0D%09", "X", [("k", "\n\r\t")]),
            ("X k=%F0%9F%99%82", "X", [("k", "\u{1F642}")]),
            ("X k=~!\"#$&'()*+,-./:;<>?@[\\]^_`{|}", "X", [("k", "~!\"#$&'()*+,-./:;<>?@[\\]^_`{|}")]),
        ]
        for c in cases {
            let parsed = try LineFormat.parse(Substring(c.text))
            XCTAssertEqual(parsed.verb, c.verb, c.text.debugDescription)
            XCTAssertEqual(parsed.fields.pairs.map(\.key), c.fields.map(\.0), c.text.debugDescription)
            XCTAssertEqual(parsed.fields.pairs.map(\.value), c.fields.map(\.1), c.text.debugDescription)
        }
    }

    func testParsesSubstringOfALargerBuffer() throws {
        // Framing splits bytes at LF (a Character split would not: "\r\n" is one grapheme), leaving the CR.
        let buffer = "PING\nACQUIRE network=blue owner=c1\r\nQUIT\n"
        let lines = buffer.utf8.split(separator: UInt8(ascii: "\n")).map { Substring($0) }
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[1].last, "\r")
        XCTAssertEqual(try lines.map { try LineFormat.parse($0).verb }, ["PING", "ACQUIRE", "QUIT"])
        XCTAssertEqual(try LineFormat.parse(lines[1]).fields, ["network": "blue", "owner": "c1"])
    }

    func testRejectsMalformedLines() {
        let cases: [(text: String, fragment: String)] = [
            // empty
            ("", "empty line"),
            (" ", "empty line"),
            ("     ", "empty line"),
            ("\r", "empty line"),
            // verb
            ("P_NG", "is not a verb"),
            ("PING! x=1", "is not a verb"),
            ("P.NG", "is not a verb"),
            ("=x", "is not a verb"),
            ("k=v", "is not a verb"),
            // field shape
            ("PING x", "'x' is not a key=value field"),
            ("PING x=1 y", "'y' is not a key=value field"),
            ("PING =1", "is not a field name"),
            ("AUTH Secret=x", "'Secret' is not a field name"),
            ("AUTH se_cret=x", "'se_cret' is not a field name"),
            ("AUTH se.cret=x", "is not a field name"),
            ("AUTH a:b=x", "is not a field name"),
            ("AUTH secret=a secret=b", "field 'secret' given twice"),
            ("AUTH secret= secret=", "field 'secret' given twice"),
            // percent escapes
            ("AUTH secret=%", "'%' not followed by two hex digits"),
            ("AUTH secret=abc%", "'%' not followed by two hex digits"),
            ("AUTH secret=%4", "'%' not followed by two hex digits"),
            ("AUTH secret=%zz", "'%' not followed by two hex digits"),
            ("AUTH secret=%4g", "'%' not followed by two hex digits"),
            ("AUTH secret=%g4", "'%' not followed by two hex digits"),
            ("AUTH secret=%%41", "'%' not followed by two hex digits"),
            ("AUTH secret=%-1", "'%' not followed by two hex digits"),
            // invalid UTF-8 after decoding
            ("AUTH secret=%FF", "not valid UTF-8"),
            ("AUTH secret=%C3", "not valid UTF-8"),
            ("AUTH secret=a%80", "not valid UTF-8"),
            ("AUTH secret=%C0%AF", "not valid UTF-8"),  // overlong '/'
            ("AUTH secret=%E6%97", "not valid UTF-8"),  // truncated
            ("AUTH secret=%ED%A0%80", "not valid UTF-8"),  // surrogate
            ("AUTH secret=%F4%90%80%80", "not valid UTF-8"),  // above U+10FFFF
            // raw bytes outside printable ASCII
            ("AUTH\tsecret=x", "byte 0x9 is not allowed"),
            ("AUTH secret=x\u{0}", "byte 0x0 is not allowed"),
            ("AUTH secret=\u{1B}[31m", "byte 0x1b is not allowed"),
            ("AUTH secret=\u{7F}", "byte 0x7f is not allowed"),
            ("AUTH secret=\u{E9}", "byte 0xc3 is not allowed"),
            ("AUTH secret=x\n", "byte 0xa is not allowed"),
            ("AUTH secret=x\r\r", "byte 0xd is not allowed"),
            ("AUTH\rsecret=x", "byte 0xd is not allowed"),
            ("\u{FEFF}PING", "byte 0xef is not allowed"),
        ]
        for (text, fragment) in cases {
            assertBadLine(text, fragment)
        }
    }

    func testLineLengthLimit() throws {
        XCTAssertEqual(WireLimits.maxLineBytes, 8192)
        let prefix = "X k="
        let exact = prefix + String(repeating: "a", count: WireLimits.maxLineBytes - prefix.utf8.count)
        XCTAssertEqual(exact.utf8.count, 8192)
        XCTAssertEqual(try LineFormat.parse(Substring(exact)).fields["k"]?.utf8.count, 8188)
        XCTAssertEqual(
            try LineFormat.parse(Substring(exact + "\r")).fields["k"]?.utf8.count,
            8188,
            "the CR before LF does not count"
        )
        assertBadLine(exact + "a", "line longer than 8192 bytes")
        assertBadLine(exact + "a\r", "line longer than 8192 bytes")
        assertBadLine(String(repeating: " ", count: 9000), "line longer than 8192 bytes")
        assertBadLine(String(repeating: "%41", count: 3000), "line longer than 8192 bytes")
    }

    // MARK: escaping

    func testEscapeTable() {
        let cases: [(raw: String, escaped: String)] = [
            ("", ""),
            ("abc", "abc"),
            ("a b", "a%20b"),
            ("  ", "%20%20"),
            ("100%", "100%25"),
            ("%25", "%2525"),
            ("\u{E9}", "%C3%A9"),
            ("\u{65E5}\u{672C}", "%E6%97%A5%E6%9C%AC"),
            ("\u{1F642}", "%F0%9F%99%82"),
            ("e\u{301}", "e%CC%81"),
            ("\t", "%09"),
            ("\n", "%0A"),
            ("\r\n", "%0D%0A"),
            ("\u{0}", "%00"),
            ("\u{7F}", "%7F"),
            ("a=b", "a=b"),
            ("~!\"#$&'()*+,-./:;<>?@[\\]^_`{|}", "~!\"#$&'()*+,-./:;<>?@[\\]^_`{|}"),
            ("gateway VIP", "gateway%20VIP"),
            ("02:42:ac:11:00:02", "02:42:ac:11:00:02"),
        ]
        for (raw, escaped) in cases {
            XCTAssertEqual(LineFormat.escape(raw), escaped, raw.debugDescription)
        }
    }

    func testRenderTable() {
        let cases: [(line: Line, text: String)] = [
            (Line("PING"), "PING"),
            (Line("OK", ["pong": "1"]), "OK pong=1"),
            (Line("X", ["note": "", "mac": ""]), "X note= mac="),
            (
                Line("RESERVE", ["network": "blue", "note": "gateway VIP 100%"]),
                "RESERVE network=blue note=gateway%20VIP%20100%25"
            ),
        ]
        for (line, text) in cases {
            XCTAssertEqual(LineFormat.render(line), text)
        }
    }

    func testValuesRoundTripThroughRenderAndParse() throws {
        var values = [
            "", " ", "%", "%%", "%25", "% 20", " leading", "trailing ", "a=b", "=", "k=v=w", "\u{0}", "\u{E9}t\u{E9}",
            "\u{1F642}\u{1F3FD}", "e\u{301}", "\r\n", "\r", "tab\there", "\u{FEFF}bom", "\u{10FFFF}", "\u{7F}\u{80}",
            String(repeating: "x", count: 2_000),
        ]
        // Every single Unicode scalar from 0x01 to 0x17F, plus seeded random strings of arbitrary scalars.
        values.append(String(String.UnicodeScalarView((UInt32(1)...0x17F).compactMap(Unicode.Scalar.init))))
        var generator = WireSeededGenerator(seed: 7)
        for _ in 0..<300 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...12, using: &generator) {
                let ranges: [ClosedRange<UInt32>] = [
                    0...0x7F, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFF,
                    0x10000...0x10FFFF,
                ]
                let range = ranges.randomElement(using: &generator)!
                if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &generator)) { scalars.append(scalar) }
            }
            values.append(String(scalars))
        }
        for value in values {
            let rendered = LineFormat.render(Line("SET", ["a": value, "b": "after"]))
            XCTAssertTrue(rendered.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, rendered.debugDescription)
            XCTAssertEqual(rendered.split(separator: " ").count, 3, "a value never adds a separator: \(rendered)")
            let parsed = try LineFormat.parse(Substring(rendered))
            XCTAssertEqual(parsed.fields["a"], value, "round trip of \(value.debugDescription)")
            XCTAssertEqual(parsed.fields["b"], "after")
            XCTAssertEqual(parsed.fields.keys, ["a", "b"])
        }
    }

    func testUnescapeAcceptsAnyPercentEncodedByte() throws {
        // Encoding bytes that need no encoding is allowed, in either case of hex digit.
        XCTAssertEqual(try LineFormat.parse("X k=%61%62%63").fields["k"], "abc")
        XCTAssertEqual(try LineFormat.parse("X k=%3d%3D").fields["k"], "==")
        XCTAssertEqual(try LineFormat.parse("X k=%c3%A9").fields["k"], "\u{E9}")
    }

    func testSanitizeMessage() {
        let cases: [(String, String)] = [
            ("plain text", "plain text"),
            ("", ""),
            ("a\nb", "a b"),
            ("a\r\nb", "a  b"),
            ("tab\there", "tab here"),
            ("del\u{7F}", "del "),
            ("nul\u{0}", "nul "),
            ("caf\u{E9}", "caf%C3%A9"),
            ("100% sure", "100% sure"),
            ("name 'x=y'", "name 'x=y'"),
        ]
        for (raw, clean) in cases {
            let sanitized = LineFormat.sanitizeMessage(raw)
            XCTAssertEqual(sanitized, clean, raw.debugDescription)
            XCTAssertTrue(sanitized.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, raw.debugDescription)
        }
    }

    // MARK: Fields

    func testFieldsSubscriptAndOrder() {
        var fields: Fields = ["a": "1", "b": "2"]
        XCTAssertEqual(fields["a"], "1")
        XCTAssertNil(fields["z"])
        fields["a"] = "one"
        XCTAssertEqual(fields.keys, ["a", "b"], "replacing keeps the position")
        fields["c"] = "3"
        XCTAssertEqual(fields.keys, ["a", "b", "c"])
        fields["b"] = nil
        XCTAssertEqual(fields.keys, ["a", "c"])
        fields["nothing"] = nil
        XCTAssertEqual(fields.keys, ["a", "c"])
        fields.append("d", "4")
        XCTAssertEqual(fields.pairs.map(\.value), ["one", "3", "4"])
        XCTAssertEqual(Fields(), [:])
        XCTAssertNotEqual(["a": "1", "b": "2"] as Fields, ["b": "2", "a": "1"] as Fields, "order is significant")
        XCTAssertNotEqual(["a": "1"] as Fields, ["a": "2"] as Fields)
        XCTAssertNotEqual(["a": "1"] as Fields, ["a": "1", "b": "2"] as Fields)
    }

    func testFieldsTypedAccessors() throws {
        let fields: Fields = [
            "n": "42", "neg": "-7", "bad": "4x", "empty": "", "ip": "10.0.0.1", "badip": "10.0.0.01", "s": "x",
        ]
        XCTAssertEqual(try fields.int("n"), 42)
        XCTAssertEqual(try fields.int("neg"), -7)
        XCTAssertNil(try fields.int("missing"))
        XCTAssertEqual(try fields.requireInt("n"), 42)
        XCTAssertEqual(try fields.address("ip"), IPv4Address(10, 0, 0, 1))
        XCTAssertNil(try fields.address("missing"))
        XCTAssertEqual(try fields.requireAddress("ip"), IPv4Address(10, 0, 0, 1))
        XCTAssertEqual(try fields.require("empty"), "")
        XCTAssertEqual(try fields.requireNonEmpty("s"), "x")
        XCTAssertNoThrow(try fields.only(Set(fields.keys), verb: "X"))

        let failures: [(String, () throws -> Any)] = [
            ("field 'bad' must be a whole number, got '4x'", { try fields.int("bad") as Any }),
            ("missing field 'missing'", { try fields.requireInt("missing") }),
            ("field 'badip' must be an IPv4 address, got '10.0.0.01'", { try fields.address("badip") as Any }),
            ("missing field 'missing'", { try fields.requireAddress("missing") }),
            ("missing field 'missing'", { try fields.require("missing") }),
            ("field 'empty' must not be empty", { try fields.requireNonEmpty("empty") }),
            ("missing field 'missing'", { try fields.requireNonEmpty("missing") }),
            ("X does not take field 'neg'", { try fields.only(["n"], verb: "X") }),
        ]
        for (message, body) in failures {
            XCTAssertThrowsError(try body(), message) {
                XCTAssertEqual($0 as? NetleaseError, NetleaseError.badRequest(message))
            }
        }
    }

    func testNumbersAreStrictDecimal() throws {
        let valid: [(String, Int64)] = [
            ("0", 0), ("-0", 0), ("7", 7), ("-7", -7), ("007", 7), ("1700000000000", 1_700_000_000_000),
            ("999999999999999999", 999_999_999_999_999_999), ("-999999999999999999", -999_999_999_999_999_999),
        ]
        for (text, value) in valid {
            XCTAssertEqual(try (["v": text] as Fields).int("v"), value, text)
        }
        let invalid = [
            "", "-", "+1", "1.0", "1e3", "0x10", "1_000", "--1", "1-", "1234567890123456789", "\u{0661}",
            "\u{FF11}", "9223372036854775807",
        ]
        for text in invalid {
            XCTAssertThrowsError(try (["v": text] as Fields).int("v"), text.debugDescription) {
                XCTAssertEqual(($0 as? NetleaseError)?.code, .badRequest)
            }
        }
    }
}

/// SplitMix64, so the random round trips repeat exactly.
struct WireSeededGenerator: RandomNumberGenerator {
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
