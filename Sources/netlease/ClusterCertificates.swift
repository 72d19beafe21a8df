import Crypto
import Foundation
import NetleaseCore
import SwiftASN1
import X509

/// The cluster's TLS material as `netlease tls init` makes it: a CA, the coordinator's certificate and one client
/// certificate per host, each as PEM text, in memory until `ClusterCertificateFiles` writes them.
///
/// Design notes: ECDSA P-256 keys and SHA-256 signatures (what the openssl recipe this replaces made, and what every
/// TLS 1.2+ peer accepts). The CA may sign end certificates only (path length 0). The coordinator's certificate
/// carries exactly the names and addresses given, with `serverAuth`; host certificates carry `clientAuth` and no
/// subjectAltName, so one can never pass as the coordinator when clients check its name. Every certificate starts an
/// hour in the past so that a host whose clock lags a little accepts it at once.
struct ClusterCertificates {
    /// One certificate with its private key, both PEM.
    struct Issued {
        /// The file name stem: `ca`, `coordinator` or the host's name.
        var name: String
        var certificatePEM: String
        var privateKeyPEM: String
    }

    /// What the coordinator's certificate names: clients reach it by these.
    struct CoordinatorNames {
        var dnsNames: [String] = []
        var addresses: [String] = []
    }

    var authority: Issued
    var coordinator: Issued
    var hosts: [Issued]

    static let caDays = 3650
    static let certificateDays = 825
    static let backdating: TimeInterval = 3600

    /// Makes a new CA and signs the coordinator's and every host's certificate with it.
    static func make(
        coordinator names: CoordinatorNames,
        hosts: [String],
        caDays: Int = caDays,
        days: Int = certificateDays,
        now: Date = Date()
    ) throws -> ClusterCertificates {
        let notBefore = now.addingTimeInterval(-backdating)
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("netlease cluster CA") }
        let caPublicKey = Certificate.PublicKey(caKey.publicKey)
        let caIdentifier = SubjectKeyIdentifier(hash: caPublicKey)
        let caCertificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: caPublicKey,
            notValidBefore: notBefore,
            notValidAfter: now.addingTimeInterval(Double(caDays) * 86_400),
            issuer: caName,
            subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                caIdentifier
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
        let issuer = Issuer(
            name: caName,
            key: Certificate.PrivateKey(caKey),
            identifier: caIdentifier.keyIdentifier,
            notBefore: notBefore,
            notAfter: now.addingTimeInterval(Double(days) * 86_400)
        )
        let alternativeNames =
            try names.dnsNames.map { GeneralName.dnsName($0) }
            + names.addresses.map { try GeneralName.ipAddress(ASN1OctetString(contentBytes: addressBytes($0)[...])) }
        return ClusterCertificates(
            authority: Issued(
                name: "ca",
                certificatePEM: try caCertificate.serializeAsPEM().pemString,
                privateKeyPEM: caKey.pemRepresentation
            ),
            coordinator: try issuer.sign(
                name: "coordinator",
                commonName: "netlease-coordinator",
                usage: .serverAuth,
                alternativeNames: alternativeNames
            ),
            hosts: try hosts.map { try issuer.sign(name: $0, commonName: $0, usage: .clientAuth) }
        )
    }

    /// Every certificate in the order the files are written: CA, coordinator, hosts.
    var all: [Issued] { [authority, coordinator] + hosts }

    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6; throws for anything else.
    static func addressBytes(_ text: String) throws -> [UInt8] {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        throw NetleaseError.badRequest("'\(text)' is not an IPv4 or IPv6 address")
    }

    /// The CA's signing side.
    private struct Issuer {
        var name: DistinguishedName
        var key: Certificate.PrivateKey
        var identifier: ArraySlice<UInt8>
        var notBefore: Date
        var notAfter: Date

        func sign(
            name fileName: String,
            commonName: String,
            usage: ExtendedKeyUsage.Usage,
            alternativeNames: [GeneralName] = []
        ) throws -> Issued {
            let subjectKey = P256.Signing.PrivateKey()
            let publicKey = Certificate.PublicKey(subjectKey.publicKey)
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: name,
                subject: try DistinguishedName { CommonName(commonName) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([usage])
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: identifier)
                    if !alternativeNames.isEmpty {
                        SubjectAlternativeNames(alternativeNames)
                    }
                },
                issuerPrivateKey: key
            )
            return Issued(
                name: fileName,
                certificatePEM: try certificate.serializeAsPEM().pemString,
                privateKeyPEM: subjectKey.pemRepresentation
            )
        }
    }
}
