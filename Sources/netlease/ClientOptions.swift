import ArgumentParser
import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore

/// Where the coordinator is and how to authenticate: shared by every admin command.
struct ClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Coordinator address HOST:PORT (env NETLEASE_COORDINATOR; default 127.0.0.1:7420).", valueName: "addr"))
    var coordinator: String?

    @Option(help: ArgumentHelp(
        "File holding the cluster secret (env NETLEASE_SECRET_FILE; default ./netlease-data/cluster-secret if present).",
        valueName: "path"))
    var secretFile: String?

    static let defaultSecretFile = "netlease-data/cluster-secret"

    func endpoint() throws -> Endpoint {
        let text = coordinator ?? ProcessInfo.processInfo.environment["NETLEASE_COORDINATOR"] ?? "127.0.0.1:7420"
        return try Endpoint(parsing: text)
    }

    func secret() throws -> String? {
        if let path = secretFile ?? ProcessInfo.processInfo.environment["NETLEASE_SECRET_FILE"] {
            return try ClusterSecret.load(at: path, checkPermissions: false).text
        }
        if FileManager.default.isReadableFile(atPath: Self.defaultSecretFile) {
            return try ClusterSecret.load(at: Self.defaultSecretFile, checkPermissions: false).text
        }
        return nil
    }

    /// Connects, authenticates when a secret is known, runs `body`.
    func withConnection<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
        let endpoint = try endpoint()
        let secret = try secret()
        return try await NetleaseConnection.connect(to: endpoint, secret: secret, body)
    }
}

/// Runs a command body and turns failures into `error: <code>: <message>` on stderr and exit status 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as NetleaseError {
        FileHandle.standardError.write(Data("error: \(error.code.rawValue): \(error.message)\n".utf8))
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: internal: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

func parseAddress(_ text: String, field: String) throws -> IPv4Address {
    guard let address = IPv4Address(text) else {
        throw NetleaseError.badRequest("\(field) '\(text)' is not an IPv4 address")
    }
    return address
}
