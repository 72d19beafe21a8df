import Foundation
import NIOSSL
import NetleaseCore

/// TLS with mutual authentication for the coordinator's TCP transport: the files one side needs.
///
/// Both sides present a certificate and verify the other's against the same CA: the coordinator refuses, at the
/// handshake, every client without a certificate signed by the CA; a client refuses a coordinator whose certificate
/// the CA did not sign. The line protocol runs unchanged inside the TLS stream, and the cluster secret still gates
/// state changes: TLS says who may talk at all, AUTH who may change state.
///
/// The files are read each time a context is made (at listen, and at every client connect), so replacing them takes
/// effect for the next listener or connection without a restart of the reader.
public struct TLSSettings: Sendable, Hashable {
    /// PEM: this side's certificate first, optionally followed by intermediate CA certificates.
    public var certificateChainFile: String
    /// PEM: the private key of the first certificate in `certificateChainFile` (unencrypted).
    public var privateKeyFile: String
    /// PEM: the CA certificate(s) the peer's certificate must be signed by.
    public var trustedCAFile: String
    /// Clients only: turns on name checking of the coordinator's certificate. NIOSSL's rule: the certificate passes
    /// when a DNS subjectAltName matches this name, or an IP subjectAltName matches the address actually connected
    /// to (an IP address given here is checked that way). nil: any certificate signed by the CA is accepted.
    public var serverName: String?

    public init(
        certificateChainFile: String,
        privateKeyFile: String,
        trustedCAFile: String,
        serverName: String? = nil
    ) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.trustedCAFile = trustedCAFile
        self.serverName = serverName
    }

    /// Reads and checks every file as a server would (`asServer`) or a client: each readable, valid PEM, the key
    /// belonging to the certificate. Throws `bad-request` naming the file and the reason, so a command can stop at
    /// start with a clear message instead of failing on its first connection.
    public func validate(asServer: Bool) throws {
        _ = asServer ? try makeServerContext() : try makeClientContext()
    }

    /// The server's context: presents the chain, and requires every client to present a certificate that the CA
    /// signed (no hostname check: a server has no name to check a client against).
    public func makeServerContext() throws -> NIOSSLContext {
        let material = try load()
        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: material.chain.map { .certificate($0) },
            privateKey: .privateKey(material.key),
            trustRoots: .certificates(material.authorities)
        )
        configuration.minimumTLSVersion = .tlsv12
        return try makeContext(configuration)
    }

    /// The client's context: presents the chain, verifies the server's certificate against the CA, and its name
    /// when `serverName` is set.
    public func makeClientContext() throws -> NIOSSLContext {
        let material = try load()
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = material.chain.map { .certificate($0) }
        configuration.privateKey = .privateKey(material.key)
        configuration.trustRoots = .certificates(material.authorities)
        configuration.certificateVerification = serverName == nil ? .noHostnameVerification : .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        return try makeContext(configuration)
    }

    /// The name sent as SNI. An IP address may not be sent there; full verification then matches the
    /// certificate's IP subjectAltNames against the address actually connected to.
    public var serverNameIndication: String? {
        guard let serverName, !Self.isIPAddress(serverName) else { return nil }
        return serverName
    }

    private struct Material {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        var authorities: [NIOSSLCertificate]
    }

    private func load() throws -> Material {
        let chain = try Self.certificates(in: certificateChainFile, role: "TLS certificate file")
        let keyBytes = try Self.contents(of: privateKeyFile, role: "TLS private key file")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw NetleaseError.badRequest(
                "TLS private key file \(privateKeyFile): not an unencrypted PEM private key (\(error))"
            )
        }
        let authorities = try Self.certificates(in: trustedCAFile, role: "TLS CA file")
        return Material(chain: chain, key: key, authorities: authorities)
    }

    private func makeContext(_ configuration: TLSConfiguration) throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // BoringSSL refuses a key that does not belong to the chain's first certificate at this point.
            throw NetleaseError.badRequest(
                "TLS private key file \(privateKeyFile) does not belong to the certificate in \(certificateChainFile)"
            )
        } catch {
            throw NetleaseError.badRequest(
                "TLS files \(certificateChainFile), \(privateKeyFile), \(trustedCAFile) cannot be used together: "
                    + "\(error)"
            )
        }
    }

    private static func certificates(in path: String, role: String) throws -> [NIOSSLCertificate] {
        let bytes = try contents(of: path, role: role)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw NetleaseError.badRequest("\(role) \(path): not a PEM certificate file (\(error))")
        }
        guard !certificates.isEmpty else {
            throw NetleaseError.badRequest("\(role) \(path): holds no PEM certificate")
        }
        return certificates
    }

    private static func contents(of path: String, role: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw NetleaseError.badRequest("\(role) \(path): no such file")
        }
        guard !isDirectory.boolValue else { throw NetleaseError.badRequest("\(role) \(path): is a directory") }
        // Opened once by hand first: open(2)'s errno names the reason ("Permission denied") where Foundation's
        // read error only says that it failed.
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw NetleaseError.badRequest("\(role) \(path): cannot be read (\(reason))")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw NetleaseError.badRequest("\(role) \(path): cannot be read (\(error))")
        }
        guard !data.isEmpty else { throw NetleaseError.badRequest("\(role) \(path): is empty") }
        return Array(data)
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
