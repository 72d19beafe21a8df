import Foundation
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// The shared secret that authenticates agents and admins. Generated on first start into
/// `<data-dir>/cluster-secret` with mode 0600; never logged.
public struct ClusterSecret: Sendable {
    public static let fileName = "cluster-secret"
    /// Read-only credentials for monitoring and admins who only list: every change is refused with `forbidden`.
    public static let readerFileName = "reader-secret"
    private let bytes: [UInt8]
    private let check: (@Sendable (String) -> Bool)?

    public init(_ text: String) {
        bytes = Array(text.utf8)
        check = nil
    }

    /// A secret this side knows only by a check, e.g. against a hash kept in a shared database: `matches` asks
    /// `check` (which must compare in time independent of where a difference is); `text` is empty.
    public init(verifiedBy check: @escaping @Sendable (String) -> Bool) {
        bytes = []
        self.check = check
    }

    /// Reads the secret at `path`, or creates it (32 random bytes, hex) when it does not exist. Refuses a file that
    /// group or others can read or write.
    public static func loadOrCreate(at path: String) throws -> (secret: ClusterSecret, created: Bool) {
        if FileManager.default.fileExists(atPath: path) {
            return (try load(at: path, checkPermissions: true), false)
        }
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try PrivateFile(creating: path, code: .storage).finish(writing: Data((hex + "\n").utf8))
        return (ClusterSecret(hex), true)
    }

    /// Reads a secret file. With `checkPermissions`, a file readable or writable by group or others is refused.
    public static func load(at path: String, checkPermissions: Bool) throws -> ClusterSecret {
        if checkPermissions {
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw NetleaseError(.badRequest, "cannot read secret file \(path): \(String(cString: strerror(errno)))")
            }
            let mode = info.st_mode & 0o777
            guard mode & 0o077 == 0 else {
                throw NetleaseError(
                    .badRequest,
                    "secret file \(path) has mode \(String(mode, radix: 8)); it must not be readable by others. Fix: chmod 600 \(path)"
                )
            }
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw NetleaseError(.badRequest, "cannot read secret file \(path)")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw NetleaseError(.badRequest, "secret file \(path) is empty") }
        return ClusterSecret(trimmed)
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Compares in time that depends only on the lengths, never on where the first difference is.
    public func matches(_ candidate: String) -> Bool {
        if let check { return check(candidate) }
        let other = Array(candidate.utf8)
        var difference = UInt8(other.count == bytes.count ? 0 : 1)
        for index in 0..<max(bytes.count, 1) {
            let a = index < bytes.count ? bytes[index] : 0
            let b = index < other.count ? other[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }
}

/// A secret describes itself without its bytes. ServiceLifecycle logs the description of every service at debug
/// level — the coordinator's configuration, secrets included — and errors and test failures print values too; the
/// default description of a struct would show the bytes as decimal numbers there.
extension ClusterSecret: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "ClusterSecret(redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
