import Crypto
import Foundation
import NetleaseCore

/// A secret as a store keeps it: SHA-256 of a random salt and the secret, stored as
/// `sha256:<salt hex>:<digest hex>`. The coordinators sharing a database authenticate against these hashes (only
/// the coordinator that created the secrets holds them in its data directory), and every store keeps host
/// credentials only this way: the CLI that issues one hashes it and sends the hash.
///
/// One SHA-256 is enough for secrets netlease generates (32 random bytes: nothing to guess); a hand-made short
/// secret is only as strong as its own entropy against someone who can read the database.
public struct SecretHash: Sendable, Equatable {
    public let salt: [UInt8]
    public let digest: [UInt8]

    public init(hashing secret: String) {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        self.init(salt: salt, secret: secret)
    }

    public init(salt: [UInt8], secret: String) {
        self.salt = salt
        digest = Array(SHA256.hash(data: salt + Array(secret.utf8)))
    }

    public init?(stored text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "sha256", let salt = Self.bytes(parts[1]),
            let digest = Self.bytes(parts[2]), !salt.isEmpty, digest.count == SHA256.byteCount
        else { return nil }
        self.salt = salt
        self.digest = digest
    }

    public var stored: String { "sha256:\(Self.hex(salt)):\(Self.hex(digest))" }

    /// Compares the candidate's digest in time independent of where it differs.
    public func matches(_ candidate: String) -> Bool {
        let other = Array(SHA256.hash(data: salt + Array(candidate.utf8)))
        var difference: UInt8 = 0
        for (a, b) in zip(digest, other) { difference |= a ^ b }
        return difference == 0 && other.count == digest.count
    }

    private static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    private static func bytes(_ text: Substring) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
