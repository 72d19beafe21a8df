import NetleaseWire

extension RequestHandler {
    /// The verb a line names (verbs are case-insensitive), for counting a line that did not parse; nil when it
    /// names none. Only lines that failed to parse get here.
    static func verb(in line: Substring) -> Request.Verb? {
        let word = line.drop { $0 == " " || $0 == "\t" }.prefix { $0 != " " && $0 != "\t" }
        return Request.Verb(rawValue: word.uppercased())
    }
}

extension Result {
    /// The error of a failure; nil on success.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
