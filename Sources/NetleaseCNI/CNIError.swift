/// A CNI error result (SPEC.md, "Error"): a well-known code, a short message, optional details.
public struct CNIError: Error, Sendable, Equatable {
    public var code: Int
    public var message: String
    public var details: String = ""

    public init(code: Int, message: String, details: String = "") {
        self.code = code
        self.message = message
        self.details = details
    }

    /// The spec's well-known codes this plugin uses, and its own (100 and above are the plugin's).
    public enum Code {
        public static let incompatibleVersion = 1
        public static let invalidEnvironment = 4
        public static let undecodable = 6
        public static let invalidConfig = 7
        public static let tryAgainLater = 11
        /// STATUS: cannot service ADD (no free address).
        public static let notAvailable = 50
        /// STATUS: cannot service ADD, and existing containers may have limited connectivity (the agent that
        /// follows the tunnel mesh is unreachable or has no coordinator session).
        public static let notAvailableLimitedConnectivity = 51
        /// The agent refused the request (the message carries its code), or CHECK found the lease missing.
        public static let agentRefused = 100
    }
}
