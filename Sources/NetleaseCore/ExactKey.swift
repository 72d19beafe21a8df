/// A string compared and hashed by its UTF-8 bytes, not by Unicode canonical equivalence as `String` is. The store's keys compare bytes; an in-memory index keyed by `ExactKey` agrees with them whatever
/// the strings hold (see `Names` for why the two differ).
struct ExactKey: Hashable, Sendable {
    let string: String

    init(_ string: String) { self.string = string }

    static func == (a: ExactKey, b: ExactKey) -> Bool {
        a.string.utf8.count == b.string.utf8.count && a.string.utf8.elementsEqual(b.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        var bytes = string  // withUTF8 makes the storage contiguous first if it is not (never for native strings)
        bytes.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension String {
    /// Equal bytes, not merely canonically equivalent text.
    func hasSameBytes(as other: String) -> Bool { ExactKey(self) == ExactKey(other) }
}
