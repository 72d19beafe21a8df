import ArgumentParser
import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTransport

/// Where the coordinator is and how to authenticate: shared by every admin command.
struct ClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Coordinator address HOST:PORT (env NETLEASE_COORDINATOR; default \(ClientOptions.defaultCoordinator)).",
        valueName: "addr"))
    var coordinator: String?

    @Option(help: ArgumentHelp(
        "File holding the cluster secret (env NETLEASE_SECRET_FILE; default \(ClientOptions.defaultSecretFile) "
            + "if present).",
        valueName: "path"))
    var secretFile: String?

    @Option(help: ArgumentHelp(
        "PEM certificate this client presents to a coordinator started with --tls-*; needs --tls-key and --tls-ca "
            + "(env NETLEASE_TLS_CERT).",
        valueName: "file"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("PEM private key of --tls-cert (env NETLEASE_TLS_KEY).", valueName: "file"))
    var tlsKey: String?

    @Option(help: ArgumentHelp(
        "PEM CA certificate that must have signed the coordinator's certificate (env NETLEASE_TLS_CA).",
        valueName: "file"))
    var tlsCa: String?

    @Option(help: ArgumentHelp(
        "Name the coordinator's certificate must carry as a DNS or IP subjectAltName (env NETLEASE_TLS_SERVER_NAME; "
            + "default: any certificate the CA signed is accepted).",
        valueName: "name"))
    var tlsServerName: String?

    /// A coordinator on this machine, on the default port.
    static let defaultCoordinator = Endpoint(host: "127.0.0.1", port: CoordinatorConfiguration.defaultPort).description
    /// The cluster secret a coordinator started here with its default data directory created.
    static let defaultSecretFile = (Netlease.Coordinator.defaultDataDirectory as NSString)
        .appendingPathComponent(ClusterSecret.fileName)

    func validate() throws {
        _ = try tls()
    }

    /// The TLS settings from the flags, else the environment: all three files or none.
    func tls() throws -> TLSSettings? {
        let environment = ProcessInfo.processInfo.environment
        func resolved(_ flag: String?, _ variable: String) -> String? {
            flag ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        return try tlsSettings(
            cert: resolved(tlsCert, "NETLEASE_TLS_CERT"), key: resolved(tlsKey, "NETLEASE_TLS_KEY"),
            ca: resolved(tlsCa, "NETLEASE_TLS_CA"), serverName: resolved(tlsServerName, "NETLEASE_TLS_SERVER_NAME"),
            names: (
                "--tls-cert (or NETLEASE_TLS_CERT)", "--tls-key (or NETLEASE_TLS_KEY)", "--tls-ca (or NETLEASE_TLS_CA)"
            ))
    }

    func endpoint() throws -> Endpoint {
        let text = coordinator ?? ProcessInfo.processInfo.environment["NETLEASE_COORDINATOR"] ?? Self.defaultCoordinator
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

    /// Connects (over TLS when configured), authenticates when a secret is known, runs `body`.
    func withConnection<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
        let endpoint = try endpoint()
        let secret = try secret()
        let tls = try tls()
        return try await NetleaseConnection.connect(to: endpoint, secret: secret, tls: tls, body)
    }
}

/// TLS settings from a command's three file options: all three give settings, none gives nil, anything else is a
/// `ValidationError` naming what is missing (`names` label the options in that message).
func tlsSettings(
    cert: String?, key: String?, ca: String?, serverName: String? = nil,
    names: (cert: String, key: String, ca: String) = ("--tls-cert", "--tls-key", "--tls-ca")
) throws -> TLSSettings? {
    let missing = [(cert, names.cert), (key, names.key), (ca, names.ca)].filter { $0.0 == nil }.map(\.1)
    if missing.count == 3 {
        if serverName != nil {
            throw ValidationError("a TLS server name needs \(names.cert), \(names.key) and \(names.ca)")
        }
        return nil
    }
    guard let cert, let key, let ca else {
        throw ValidationError(
            "TLS needs \(names.cert), \(names.key) and \(names.ca) together; "
                + "missing: \(missing.joined(separator: ", "))")
    }
    return TLSSettings(certificateChainFile: cert, privateKeyFile: key, trustedCAFile: ca, serverName: serverName)
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
