/// A CNI error: code 4 invalid environment, 7 invalid configuration, 11 try again later, 999 other.
public struct CNIError: Error, Sendable, Equatable {
    public var code: Int
    public var message: String
    public var details: String = ""
}
