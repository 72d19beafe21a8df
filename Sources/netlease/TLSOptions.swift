import ArgumentParser
import NetleaseTransport

/// What one command's TLS options mean: the flags are the same in every command, their help says what they are for
/// there (the coordinator presents its certificate to clients, an agent or admin to coordinators).
protocol TLSOptionHelp {
    static var cert: ArgumentHelp { get }
    static var key: ArgumentHelp { get }
    static var ca: ArgumentHelp { get }
}

/// The help of a client side's TLS options, which also name the certificate the coordinator must carry.
protocol TLSClientOptionHelp: TLSOptionHelp {
    static var serverName: ArgumentHelp { get }
}

/// `--tls-cert`, `--tls-key`, `--tls-ca`: all three files or none.
struct TLSFileOptions<Help: TLSOptionHelp>: ParsableArguments {
    @Option(help: Help.cert) var tlsCert: String?
    @Option(help: Help.key) var tlsKey: String?
    @Option(help: Help.ca) var tlsCa: String?

    /// The settings of the flags as given (a server's: no server name).
    func settings() throws -> TLSSettings? { try tlsSettings(cert: tlsCert, key: tlsKey, ca: tlsCa) }
}

/// A client side's TLS options: the three files and `--tls-server-name`.
struct TLSClientOptions<Help: TLSClientOptionHelp>: ParsableArguments {
    @OptionGroup var files: TLSFileOptions<Help>
    @Option(help: Help.serverName) var tlsServerName: String?

    /// The settings of the flags as given.
    func settings() throws -> TLSSettings? {
        try tlsSettings(cert: files.tlsCert, key: files.tlsKey, ca: files.tlsCa, serverName: tlsServerName)
    }
}

/// The coordinator's: it presents its certificate and requires clients' certificates signed by the CA.
enum CoordinatorTLSHelp: TLSOptionHelp {
    static let cert = ArgumentHelp(
        "PEM certificate (chain) the coordinator presents; turns on TLS with client certificates "
            + "(needs --tls-key and --tls-ca).",
        valueName: "file"
    )
    static let key = ArgumentHelp("PEM private key of --tls-cert.", valueName: "file")
    static let ca = ArgumentHelp(
        "PEM CA certificate: clients must present a certificate signed by it, or the handshake is refused.",
        valueName: "file"
    )
}

/// An agent's: the host's certificate for every coordinator it tries.
enum AgentTLSHelp: TLSClientOptionHelp {
    static let cert = ArgumentHelp(
        "PEM certificate this host presents to coordinators started with --tls-*; needs --tls-key and --tls-ca.",
        valueName: "file"
    )
    static let key = ArgumentHelp("PEM private key of --tls-cert.", valueName: "file")
    static let ca = ArgumentHelp(
        "PEM CA certificate that must have signed the coordinators' certificates.",
        valueName: "file"
    )
    static let serverName = ArgumentHelp(
        "Name every coordinator's certificate must carry as a DNS or IP subjectAltName "
            + "(default: any certificate the CA signed is accepted).",
        valueName: "name"
    )
}

/// The admin commands': each flag falls back to its environment variable (`ClientOptions.tls()`).
enum AdminTLSHelp: TLSClientOptionHelp {
    static let cert = ArgumentHelp(
        "PEM certificate this client presents to a coordinator started with --tls-*; needs --tls-key and --tls-ca "
            + "(env NETLEASE_TLS_CERT).",
        valueName: "file"
    )
    static let key = ArgumentHelp("PEM private key of --tls-cert (env NETLEASE_TLS_KEY).", valueName: "file")
    static let ca = ArgumentHelp(
        "PEM CA certificate that must have signed the coordinator's certificate (env NETLEASE_TLS_CA).",
        valueName: "file"
    )
    static let serverName = ArgumentHelp(
        "Name the coordinator's certificate must carry as a DNS or IP subjectAltName (env NETLEASE_TLS_SERVER_NAME; "
            + "default: any certificate the CA signed is accepted).",
        valueName: "name"
    )
}
