import Foundation
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// Where the PostgreSQL store lives: `postgres://USER@HOST:PORT/DATABASE[?sslmode=MODE&sslrootcert=FILE]`
/// (`postgresql://` too). The password never comes from the URL — it would show in `ps` and in logs — but from a
/// password file (`--store-password-file`) or `PGPASSWORD`, in that order.
///
/// `sslmode` follows libpq: `disable`; `prefer` (the default: TLS when the server offers it, certificate not
/// checked); `require` (TLS or no connection, certificate not checked); `verify-ca` (TLS, certificate signed by
/// `sslrootcert` or the system's roots); `verify-full` (`verify-ca` and the certificate names HOST).
public struct PostgresStoreURL: Sendable, Equatable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable
        case prefer
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode
    /// PEM file of the CA certificates that may sign the server's certificate (`verify-ca`, `verify-full`).
    public var sslRootCertificate: String?
    /// Resolved by `withPassword(file:environment:)`; never printed.
    public var password: String?

    public static let defaultPort = 5432

    /// True for the `--store` values that mean PostgreSQL.
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    public init(parsing text: String) throws {
        guard Self.isPostgres(text), let components = URLComponents(string: text) else {
            throw Self.invalid(text, "expected postgres://USER@HOST:PORT/DATABASE")
        }
        guard components.password == nil else {
            throw NetleaseError.badRequest(
                "the store URL must not carry a password (it would show in process listings); "
                    + "use --store-password-file or PGPASSWORD"
            )
        }
        guard let user = components.user, !user.isEmpty else { throw Self.invalid(text, "the user is missing") }
        guard let host = components.host, !host.isEmpty else { throw Self.invalid(text, "the host is missing") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw Self.invalid(text, "the database name is missing")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw Self.invalid(text, "port \(port) is out of range")
        }
        var sslMode = SSLMode.prefer
        var rootCertificate: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(SSLMode.init(rawValue:)) else {
                    throw Self.invalid(
                        text,
                        "sslmode must be one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                sslMode = mode
            case "sslrootcert":
                guard let file = item.value, !file.isEmpty else { throw Self.invalid(text, "sslrootcert is empty") }
                rootCertificate = file
            default:
                throw Self.invalid(text, "unknown parameter '\(item.name)' (known: sslmode, sslrootcert)")
            }
        }
        self.user = user.removingPercentEncoding ?? user
        self.host = host
        self.port = components.port ?? Self.defaultPort
        self.database = database.removingPercentEncoding ?? database
        self.sslMode = sslMode
        self.sslRootCertificate = rootCertificate
    }

    /// The URL with its password resolved: from `file` when given (first line; the file must not be readable by
    /// group or others), else from `PGPASSWORD` in `environment`, else none.
    public func withPassword(
        file: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    )
        throws -> PostgresStoreURL
    {
        var url = self
        if let file {
            var info = stat()
            guard stat(file, &info) == 0 else {
                throw NetleaseError(.storage, "cannot read password file \(file): \(String(cString: strerror(errno)))")
            }
            guard info.st_mode & 0o077 == 0 else {
                throw NetleaseError(
                    .storage,
                    "password file \(file) is readable by group or others; chmod 600 \(file)"
                )
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw NetleaseError(.storage, "cannot read password file \(file)")
            }
            let text = String(decoding: data, as: UTF8.self)
            // The first line, whatever its ending ("\r\n" is one Character in Swift, not "\n").
            url.password = String(text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).first ?? "")
        } else if let password = environment["PGPASSWORD"] {
            url.password = password
        }
        return url
    }

    /// The URL without password, as logs and `stats` show it.
    public var description: String {
        var text = "postgres://\(user)@\(host):\(port)/\(database)"
        if sslMode != .prefer { text += "?sslmode=\(sslMode.rawValue)" }
        return text
    }

    private static func invalid(_ text: String, _ why: String) -> NetleaseError {
        NetleaseError.badRequest("invalid store URL '\(redacted(text))': \(why)")
    }

    /// `text` with any password between `://user:` and `@` replaced by `***`, so an error never echoes one.
    static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://") else { return text }
        let rest = text[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else {
            return text
        }
        return String(text[..<authority.index(after: colon)]) + "***" + String(text[at...])
    }
}
