struct Verification: Sendable, Encodable {
    var ok: Bool
    var acknowledgedHeld: Int
    var listed: Int
    var seconds: Double
    var problems: [String]
}
