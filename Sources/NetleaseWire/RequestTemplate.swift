/// A request rendered once whose one field ends in a number chosen per send.
///
/// A load generator sends the same ACQUIRE with owners `b-7-0`, `b-7-1`, … tens of thousands of times a second;
/// rendering a `Request` for each would cost the client more than the coordinator spends answering it. The template
/// renders the request once, with the field's fixed part as its value, and keeps the bytes before and after the
/// place of the number: `head`, the number's decimal digits, then `tail` is byte for byte what `Request.rendered`
/// gives for the full value, LF included. Digits never need escaping, so appending them to the escaped fixed part
/// is the escaped full value.
public struct RequestTemplate: Sendable, Equatable {
    /// The line up to and including the numbered field's fixed part.
    public let head: [UInt8]
    /// The fields after the numbered one, then the LF.
    public let tail: [UInt8]

    /// `request` must have the field `key`: its value there is the fixed part the number is appended to.
    public init(_ request: Request, numbering key: String = "owner") {
        let line = request.line
        guard let index = line.fields.pairs.firstIndex(where: { $0.key == key }) else {
            preconditionFailure("\(request.verb.rawValue) has no field '\(key)' to number")
        }
        var throughField = Fields()
        for pair in line.fields.pairs[...index] { throughField.append(pair.key, pair.value) }
        let head = LineFormat.render(Line(line.verb, throughField))
        self.head = Array(head.utf8)
        tail = Array(LineFormat.render(line).utf8.dropFirst(self.head.count)) + [UInt8(ascii: "\n")]
    }

    /// The whole line for `number`, LF included. Allocates: for tests and cold paths; hot paths write `head`, the
    /// digits and `tail` straight into their output buffer.
    public func line(_ number: some BinaryInteger) -> [UInt8] {
        head + Array(String(number).utf8) + tail
    }
}
