import ArgumentParser
import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTransport

/// Where the coordinator is and how to authenticate: shared by every admin command.
struct ClientOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Coordinator address HOST:PORT, or several separated by commas: the one that leads is used (env "
                + "NETLEASE_COORDINATOR; default \(ClientOptions.defaultCoordinator)).",
            valueName: "addr"
        )
    )
    var coordinator: String?

    @Option(
        help: ArgumentHelp(
            "File holding the cluster secret (env NETLEASE_SECRET_FILE; default \(ClientOptions.defaultSecretFile) "
                + "if present).",
            valueName: "path"
        )
    )
    var secretFile: String?

    @OptionGroup var tls: TLSClientOptions<AdminTLSHelp>

    /// A coordinator on this machine, on the default port.
    static let defaultCoordinator = Endpoint(host: "127.0.0.1", port: CoordinatorConfiguration.defaultPort).description
    /// The cluster secret a coordinator started here with its default data directory created.
    static let defaultSecretFile = (Netlease.Coordinator.defaultDataDirectory as NSString)
        .appendingPathComponent(ClusterSecret.fileName)

    /// Refuses bad values before anything runs: a usage error (exit 64) naming what is wrong.
    func validate() throws {
        _ = try resolvedTLS()
        do {
            _ = try endpoints()
        } catch let error as NetleaseError {
            throw ValidationError(error.message)
        }
    }

    /// The TLS settings from the flags, else the environment: all three files or none.
    func resolvedTLS() throws -> TLSSettings? {
        let environment = ProcessInfo.processInfo.environment
        func resolved(_ flag: String?, _ variable: String) -> String? {
            flag ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        return try tlsSettings(
            cert: resolved(tls.files.tlsCert, "NETLEASE_TLS_CERT"),
            key: resolved(tls.files.tlsKey, "NETLEASE_TLS_KEY"),
            ca: resolved(tls.files.tlsCa, "NETLEASE_TLS_CA"),
            serverName: resolved(tls.tlsServerName, "NETLEASE_TLS_SERVER_NAME"),
            names: (
                "--tls-cert (or NETLEASE_TLS_CERT)", "--tls-key (or NETLEASE_TLS_KEY)", "--tls-ca (or NETLEASE_TLS_CA)"
            )
        )
    }

    /// The first coordinator address given.
    func endpoint() throws -> Endpoint {
        try endpoints()[0]
    }

    /// Every coordinator address given (several coordinators on one database).
    func endpoints() throws -> [Endpoint] {
        let text = coordinator ?? ProcessInfo.processInfo.environment["NETLEASE_COORDINATOR"] ?? Self.defaultCoordinator
        return try Endpoint.list(text)
    }

    /// The secret from --secret-file, NETLEASE_SECRET_FILE, or the default file when this user can read it. A file
    /// that group or others can read is refused, wherever it was found, as the coordinator and the agent refuse
    /// theirs: the admin secret in a world-readable file is no secret.
    func secret() throws -> String? {
        if let path = secretFile ?? ProcessInfo.processInfo.environment["NETLEASE_SECRET_FILE"] {
            return try ClusterSecret.load(at: path, checkPermissions: true).text
        }
        if FileManager.default.isReadableFile(atPath: Self.defaultSecretFile) {
            return try ClusterSecret.load(at: Self.defaultSecretFile, checkPermissions: true).text
        }
        return nil
    }

    /// Connects (over TLS when configured) to the coordinator that leads, authenticates when a secret is known,
    /// runs `body`.
    func withConnection<T: Sendable>(_ body: (NetleaseConnection) async throws -> T) async throws -> T {
        let endpoints = try endpoints()
        let secret = try secret()
        let tls = try resolvedTLS()
        return try await NetleaseConnection.connectToLeader(among: endpoints, secret: secret, tls: tls, body)
    }
}

/// TLS settings from a command's three file options: all three give settings, none gives nil, anything else is a
/// `ValidationError` naming what is missing (`names` label the options in that message).
func tlsSettings(
    cert: String?,
    key: String?,
    ca: String?,
    serverName: String? = nil,
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
                + "missing: \(missing.joined(separator: ", "))"
        )
    }
    return TLSSettings(certificateChainFile: cert, privateKeyFile: key, trustedCAFile: ca, serverName: serverName)
}

/// The value of an address option (`option` names it); a bad one is a usage error, for `validate()` to refuse before
/// anything runs.
func addressOption(_ text: String, _ option: String = "--address") throws -> IPv4Address {
    guard let address = IPv4Address(text) else { throw ValidationError("\(option) '\(text)' is not an IPv4 address") }
    return address
}

/// An optional address option: nil when it was not given.
func addressOption(_ text: String?, _ option: String = "--address") throws -> IPv4Address? {
    try text.map { try addressOption($0, option) }
}

func parseAddress(_ text: String, field: String) throws -> IPv4Address {
    guard let address = IPv4Address(text) else {
        throw NetleaseError.badRequest("\(field) '\(text)' is not an IPv4 address")
    }
    return address
}
