// libFuzzer target for the pure line-protocol parsers of NetleaseWire and the NetleaseCore parsing beneath them.
//
// Built by scripts/fuzz-wire.sh: NetleaseCore as its own module, then this file compiled into ONE module together
// with Sources/NetleaseWire/*.swift, so internal API such as `LineFormat.unescape` is reachable without source edits.
//
// Every input is fed as one line (LFs included, which every parser must refuse cleanly), then split at LF bytes
// like the framing layer does, each piece fed to every parser (pieces over 256 bytes only to the parsers their verb
// can reach: all of them begin with the same pure LineFormat.parse). Invariants (a trap = a finding):
//   (a) no parser crashes or hangs; derived values of parsed records (`NetworkSpec.usableCount`,
//       `PoolCounts.free`, which clients compute on what they parse) do not trap either;
//   (b) round trip: Request / LocalRequest / Event accepted => its rendering parses back to an equal value;
//       the same for the record codecs (LEASE, HOST, NETWORK, CHECK), Reply heads and the Greeting;
//   (c) LineFormat.render(LineFormat.parse(x)) parses back, under the same length limit, to an equal Line and
//       renders to the same bytes; a line over the request limit is refused by the request parsers;
//   (d) LineFormat.unescape(LineFormat.escape(s)) restores s byte for byte, and escape's output is a legal value.
//
// Known findings can be let through so a long run can look for others: NETLEASE_FUZZ_ALLOW=a,b,... with
//   overlong-render   a round trip fails only because the canonical rendering exceeds its parser's length limit
//                     (WireLimits.maxLineBytes for requests, maxReplyLineBytes for replies, records and events)
//   usable-underflow  NetworkSpec.usableCount would underflow (overlapping excluded ranges)
//   free-underflow    PoolCounts.free would trap (negative counts)
// Unset (the default) every invariant traps.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NetleaseCore

@_cdecl("LLVMFuzzerTestOneInput")
public func netleaseWireFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: size > 0 ? data : nil, count: size > 0 ? size : 0)
    let whole = String(decoding: bytes, as: UTF8.self)

    // The whole input as one line.
    WireFuzz.checkLine(whole[...])
    // Split at LF, as the framer does (it strips one CR; the parsers must tolerate that CR themselves).
    if bytes.contains(UInt8(ascii: "\n")) {
        for piece in whole.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            WireFuzz.checkLine(Substring(piece))
        }
    }

    // (d) on valid UTF-8 strings derived from the input: the input with invalid sequences repaired, and the input
    // read as Latin-1 (every byte >= 0x80 becomes a two-byte scalar).
    WireFuzz.checkEscape(whole)
    if bytes.contains(where: { $0 >= 0x80 }) {
        var latin1: [UInt8] = []
        latin1.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            if byte < 0x80 {
                latin1.append(byte)
            } else {
                latin1.append(0xC0 | byte >> 6)
                latin1.append(0x80 | byte & 0x3F)
            }
        }
        WireFuzz.checkEscape(String(decoding: latin1, as: UTF8.self))
    }
    return 0
}

enum WireFuzz {
    static let allowed: Set<String> = {
        guard let raw = getenv("NETLEASE_FUZZ_ALLOW") else { return [] }
        return Set(String(cString: raw).split(separator: ",").map { String($0) })
    }()

    // MARK: reporting

    static func fail(_ invariant: String, _ message: @autoclosure () -> String) -> Never {
        fatalError("netlease-fuzz: invariant \(invariant) broken: \(message())")
    }

    /// One line to stderr, without Foundation or the `stderr` global.
    static func note(_ message: String) {
        var text = message + "\n"
        text.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
    }

    static func check(_ condition: Bool, _ invariant: String, _ message: @autoclosure () -> String) {
        if !condition { fail(invariant, message()) }
    }

    /// A short printable form of some text for failure messages.
    static func show(_ text: some StringProtocol) -> String {
        var out = "\(text.utf8.count) bytes \""
        for byte in text.utf8.prefix(240) {
            switch byte {
            case 0x20...0x7E where byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "\\x" + String(byte, radix: 16)
            }
        }
        if text.utf8.count > 240 { out += "..." }
        return out + "\""
    }

    /// A re-parse of `rendered` failed. If only because the rendering is longer than the line limit, that is the
    /// `overlong-render` finding, which may be let through.
    static func reparseFailed(_ invariant: String, source: Substring, rendered: String, error: any Error,
                              limit: Int = WireLimits.maxLineBytes) {
        let overlong = rendered.utf8.count > limit
        if overlong && allowed.contains("overlong-render") { return }
        fail(invariant + (overlong ? " [overlong-render]" : ""),
             "accepted \(show(source)) but its rendering \(show(rendered)) fails to parse: \(error)")
    }

    // MARK: one line

    static func checkLine(_ text: Substring) {
        // Two length limits: a client takes reply, record, event and greeting lines up to maxReplyLineBytes; the
        // request parsers stop at maxLineBytes. `parsed` is the line as a client parser sees it, `request` as a
        // request parser does (the same parse, refused when the line, minus one CR, is over the request limit).
        let parsed: Line?
        do { parsed = try LineFormat.parse(text, maxBytes: WireLimits.maxReplyLineBytes) } catch { parsed = nil }
        var body = text
        if body.hasSuffix("\r") { body = body.dropLast() }
        let fitsRequest = body.utf8.count <= WireLimits.maxLineBytes
        let request = fitsRequest ? parsed : nil
        if !fitsRequest {
            check((try? LineFormat.parse(text)) == nil, "(c) limit",
                  "LineFormat.parse accepted \(show(text)), longer than \(WireLimits.maxLineBytes) bytes")
        }
        if let parsed { checkRender(parsed, source: text, limit: fitsRequest ? WireLimits.maxLineBytes : WireLimits.maxReplyLineBytes) }

        // Every typed parser starts with LineFormat.parse (a pure function). Short lines go to all of them, so a
        // refusal is checked to be consistent; a long line goes only to the parsers its verb can reach, which keeps
        // big inputs from being split and decoded six times over.
        let all = text.utf8.count <= 256
        let verb = parsed?.verb
        if all || verb.flatMap(Request.Verb.init(rawValue:)) != nil { checkRequest(text, parsed: request) }
        if all || verb.flatMap(LocalRequest.Verb.init(rawValue:)) != nil { checkLocalRequest(text, parsed: request) }
        if all || verb == Event.tag { checkEvent(text, parsed: parsed) }
        if all || verb == WireLimits.protocolName { checkGreeting(text) }
        checkReplyHead(text)

        // parseRecord must agree with LineFormat.parse: same fields under the line's own tag, refusal otherwise.
        if let parsed {
            do {
                let fields = try Reply.parseRecord(text, tag: parsed.verb)
                check(fields == parsed.fields, "record", "parseRecord fields differ from LineFormat.parse for \(show(text))")
            } catch {
                fail("record", "parseRecord refused \(show(text)) under its own tag \(parsed.verb): \(error)")
            }
            checkRecords(parsed.fields, source: text)
        } else {
            let accepted = (try? Reply.parseRecord(text, tag: WireCodec.leaseTag)) != nil
            check(!accepted, "record", "parseRecord accepted \(show(text)), which LineFormat.parse refuses")
        }
    }

    /// (c) render(parse(x)) parses back to an equal Line and renders to the same bytes; it is a legal line.
    static func checkRender(_ line: Line, source: Substring, limit: Int) {
        let rendered = LineFormat.render(line)
        check(rendered.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, "(c) render",
              "rendering of \(show(source)) has bytes outside printable ASCII: \(show(rendered))")
        let again: Line
        do { again = try LineFormat.parse(rendered[...], maxBytes: limit) } catch {
            reparseFailed("(c) render", source: source, rendered: rendered, error: error, limit: limit)
            return
        }
        check(again == line, "(c) render", "\(show(source)) -> \(show(rendered)) parses to a different Line")
        check(sameBytes(again, line), "(c) render", "\(show(source)) -> \(show(rendered)) changes value bytes")
        let twice = LineFormat.render(again)
        check(sameUTF8(twice, rendered), "(c) render",
              "rendering is not a fixed point: \(show(rendered)) -> \(show(twice))")
    }

    /// Byte equality of two strings (String == is canonical equivalence; the wire promises the bytes).
    static func sameUTF8(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { pa in
            b.withUTF8 { pb in pa.count == pb.count && (pa.count == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0) }
        }
    }

    /// String == is canonical equivalence; the wire promises the bytes.
    static func sameBytes(_ a: Line, _ b: Line) -> Bool {
        sameUTF8(a.verb, b.verb) && a.fields.pairs.count == b.fields.pairs.count
            && zip(a.fields.pairs, b.fields.pairs).allSatisfy { sameUTF8($0.key, $1.key) && sameUTF8($0.value, $1.value) }
    }

    // MARK: (b) typed lines

    static func checkRequest(_ text: Substring, parsed: Line?) {
        let request: Request
        do { request = try Request(line: text) } catch { return }
        check(parsed?.verb == request.verb.rawValue, "(b) Request",
              "Request accepted \(show(text)) as \(request.verb.rawValue) but LineFormat.parse gave \(String(describing: parsed?.verb))")
        let rendered = request.rendered
        let again: Request
        do { again = try Request(line: rendered[...]) } catch {
            reparseFailed("(b) Request", source: text, rendered: rendered, error: error)
            return
        }
        check(again == request, "(b) Request",
              "\(show(text)) -> \(show(rendered)) parses to a different request: \(request) vs \(again)")
        if case .networkCreate(let spec) = request { checkDerived(spec, from: "Request NETWORK-CREATE") }
    }

    static func checkLocalRequest(_ text: Substring, parsed: Line?) {
        let request: LocalRequest
        do { request = try LocalRequest(line: text) } catch { return }
        check(parsed != nil, "(b) LocalRequest", "LocalRequest accepted \(show(text)), which LineFormat.parse refuses")
        let rendered = request.rendered
        let again: LocalRequest
        do { again = try LocalRequest(line: rendered[...]) } catch {
            reparseFailed("(b) LocalRequest", source: text, rendered: rendered, error: error)
            return
        }
        check(again == request, "(b) LocalRequest",
              "\(show(text)) -> \(show(rendered)) parses to a different request: \(request) vs \(again)")
    }

    static func checkEvent(_ text: Substring, parsed: Line?) {
        let event: Event
        do { event = try Event(line: text) } catch { return }
        check(parsed?.verb == Event.tag, "(b) Event", "Event accepted \(show(text)), not an EVENT line to LineFormat.parse")
        let rendered = event.rendered
        // One LF-terminated line.
        check(rendered.utf8.last == UInt8(ascii: "\n") && rendered.utf8.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") },
              "(b) Event", "rendering of \(show(text)) is not one LF-terminated line: \(show(rendered))")
        let body = rendered.dropLast()
        let again: Event
        do { again = try Event(line: body) } catch {
            reparseFailed("(b) Event", source: text, rendered: String(body), error: error, limit: WireLimits.maxReplyLineBytes)
            return
        }
        check(again == event, "(b) Event", "\(show(text)) -> \(show(body)) parses to a different event: \(event) vs \(again)")
        if case .network(let spec) = event { checkDerived(spec, from: "Event kind=network") }
    }

    static func checkReplyHead(_ text: Substring) {
        let head: Reply.Head
        do { head = try Reply.parseHead(text) } catch { return }
        switch head {
        case .ok(let fields, let count):
            check(count.map { $0 >= 0 } ?? true, "(b) Reply", "negative record count from \(show(text))")
            let rendered = Reply.ok(fields).lines
            check(rendered.count == 1, "(b) Reply", "Reply.ok renders \(rendered.count) lines")
            let again: Reply.Head
            do { again = try Reply.parseHead(rendered[0][...]) } catch {
                reparseFailed("(b) Reply", source: text, rendered: rendered[0], error: error,
                              limit: WireLimits.maxReplyLineBytes)
                return
            }
            check(again == head, "(b) Reply", "\(show(text)) -> \(show(rendered[0])) parses to a different head")
            if let counts = try? WireCodec.counts(from: fields) { checkDerived(counts, from: "Reply.parseHead OK") }
        case .error(let error):
            let rendered = Reply.error(error).lines
            check(rendered.count == 1 && !rendered[0].utf8.contains(UInt8(ascii: "\n")), "(b) Reply",
                  "Reply.error renders more than one line for \(show(text))")
            let again: Reply.Head
            do { again = try Reply.parseHead(rendered[0][...]) } catch {
                fail("(b) Reply", "ERR line \(show(rendered[0])) from \(show(text)) fails to parse: \(error)")
            }
            let expected = NetleaseError(error.code, LineFormat.sanitizeMessage(error.message))
            check(again == .error(expected), "(b) Reply",
                  "\(show(text)) -> \(show(rendered[0])) parses to a different error: \(again)")
        }
    }

    static func checkGreeting(_ text: Substring) {
        let greeting: Greeting
        do { greeting = try Greeting(line: text) } catch { return }
        let rendered = greeting.line
        let again: Greeting
        do { again = try Greeting(line: rendered[...]) } catch {
            reparseFailed("(b) Greeting", source: text, rendered: rendered, error: error, limit: WireLimits.maxReplyLineBytes)
            return
        }
        check(again == greeting, "(b) Greeting", "\(show(text)) -> \(show(rendered)) parses to a different greeting")
    }

    // MARK: records (what a client does with the lines after `OK count=N`)

    static func checkRecords(_ f: Fields, source: Substring) {
        if let lease = try? WireCodec.lease(from: f) {
            let fields = WireCodec.fields(lease: lease)
            roundTripRecord(WireCodec.leaseTag, fields, source: source) { try WireCodec.lease(from: $0) == lease }
        }
        if let host = try? WireCodec.host(from: f) {
            let fields = WireCodec.fields(host: host)
            roundTripRecord(WireCodec.hostTag, fields, source: source) { try WireCodec.host(from: $0) == host }
        }
        if let spec = try? WireCodec.networkSpec(from: f, requireAll: true) {
            checkDerived(spec, from: "WireCodec.networkSpec(requireAll: true)")
            var counts = try? WireCodec.counts(from: f)
            // Rendering counts computes `free`; counts that would trap there are left out when let through.
            if let c = counts, !checkDerived(c, from: "WireCodec.counts") { counts = nil }
            let fields = WireCodec.fields(network: spec, counts: counts)
            roundTripRecord(WireCodec.networkTag, fields, source: source) {
                try WireCodec.networkSpec(from: $0, requireAll: true) == spec && WireCodec.counts(from: $0) == counts
            }
        }
        if let spec = try? WireCodec.networkSpec(from: f, requireAll: false) {
            checkDerived(spec, from: "WireCodec.networkSpec(requireAll: false)")
            let fields = WireCodec.fields(createRequest: spec)
            check((try? WireCodec.networkSpec(from: fields, requireAll: false)) == spec, "(b) record NETWORK-CREATE",
                  "create fields of \(show(source)) decode to a different spec")
        }
        if let doctor = try? DoctorCheck(fields: f) {
            roundTripRecord(DoctorCheck.tag, doctor.fields, source: source) { try DoctorCheck(fields: $0) == doctor }
        }
    }

    /// Rendered as a record line and parsed back the way a client reads it, the record must decode to an equal value.
    static func roundTripRecord(_ tag: String, _ fields: Fields, source: Substring, _ same: (Fields) throws -> Bool) {
        let invariant = "(b) record \(tag)"
        do {
            guard try same(fields) else { fail(invariant, "fields of \(show(source)) decode to a different value") }
        } catch {
            fail(invariant, "fields rendered from \(show(source)) do not decode: \(error)")
        }
        let rendered = LineFormat.render(Line(tag, fields))
        let reparsed: Fields
        do { reparsed = try Reply.parseRecord(rendered[...], tag: tag) } catch {
            reparseFailed(invariant, source: source, rendered: rendered, error: error, limit: WireLimits.maxReplyLineBytes)
            return
        }
        let ok = (try? same(reparsed)) ?? false
        check(ok, invariant, "\(show(source)) -> \(show(rendered)) decodes to a different value")
    }

    // MARK: derived values

    static func checkDerived(_ spec: NetworkSpec, from origin: StaticString) {
        // usableCount must never trap, whatever the excluded ranges (overlapping, repeated, partly outside).
        let usable = spec.usableCount
        check(usable <= spec.subnet.hostCount, "(a) derived", "usableCount \(usable) above the host count")
        // For small subnets, the exact answer by counting: host addresses outside every excluded range.
        guard spec.subnet.hostCount <= 4096, spec.subnet.hostCount > 0 else { return }
        var expected: UInt64 = 0
        var address = spec.subnet.firstHost.value
        while address <= spec.subnet.lastHost.value {
            if !spec.excluded.contains(where: { $0.contains(IPv4Address(address)) }) { expected += 1 }
            address += 1
        }
        check(usable == expected, "(a) derived", "usableCount \(usable), expected \(expected) for \(spec.subnet)")
    }

    /// False when `free` would trap and that finding is let through.
    @discardableResult
    static func checkDerived(_ counts: PoolCounts, from origin: StaticString) -> Bool {
        let sum = counts.active + counts.reserved + counts.conflict + counts.cooldown
        if sum < 0 {
            if allowed.contains("free-underflow") { return false }
            note("netlease-fuzz: finding free-underflow (\(origin)): PoolCounts.free with active=\(counts.active) reserved="
                  + "\(counts.reserved) conflict=\(counts.conflict) cooldown=\(counts.cooldown) is about to trap")
        }
        _ = counts.free
        return true
    }

    // MARK: (d) escape / unescape

    static func checkEscape(_ value: String) {
        var escaped = LineFormat.escape(value)
        // value = *( %x21-24 / %x26-7E / "%" HEXDIG HEXDIG )
        let legal = escaped.withUTF8 { p -> Bool in
            func isHex(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b) }
            var i = 0
            while i < p.count {
                let byte = p[i]
                guard byte > 0x20 && byte < 0x7F else { return false }
                if byte == UInt8(ascii: "%") {
                    guard i + 2 < p.count, isHex(p[i + 1]), isHex(p[i + 2]) else { return false }
                    i += 3
                } else {
                    i += 1
                }
            }
            return true
        }
        check(legal, "(d) escape", "escape(\(show(value))) is not a legal value: \(show(escaped))")
        var plain = value
        if plain.withUTF8({ p in p.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "%") } }) {
            check(sameUTF8(escaped, value), "(d) escape", "escape changed \(show(value)), which needs no escaping")
        }
        let restored: String
        do { restored = try LineFormat.unescape(escaped[...], key: "k") } catch {
            fail("(d) escape", "unescape(escape(\(show(value)))) throws: \(error)")
        }
        check(sameUTF8(restored, value), "(d) escape",
              "unescape(escape(\(show(value)))) gives \(show(restored))")
    }
}
