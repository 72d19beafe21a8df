import NetleaseTesting

extension CoordinatorProcess {
    /// The built `netlease` executable. Under CI's variable a missing one is a failure: the crash tests must run there.
    static func binary() throws -> String {
        do { return try Executables.path() } catch { try missingCapability("\(error)") }
    }

    /// The built coordinator on 127.0.0.1 port 0 with its data in `directory`, once it listens.
    static func start(directory: String, arguments: [String] = []) async throws -> CoordinatorProcess {
        try await start(binary: try binary(), directory: directory, arguments: arguments)
    }
}
