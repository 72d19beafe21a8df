import Foundation
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// A host credential: a secret that authenticates as one host only (its join, heartbeats and leases).
///
/// Its text names the host it is for — `netlease-host:<host>:<64 hex digits>` — so an agent sends it with `AUTH`
/// like any secret file's content, and the coordinator knows which stored hash to compare without trying them all.
/// The host name is not secret; the 32 random bytes are. No cluster or reader secret has this shape (they are bare
/// hex), so the two never mix up.
///
/// The CLI makes it (`netlease host credential issue`) and sends only its salted hash: the secret never crosses the
/// network, never reaches the coordinator's memory, logs or backups, and exists only in the file the CLI wrote.
public struct HostCredential: Sendable, Equatable {
    public static let prefix = "netlease-host:"
    /// Random bytes in a generated credential.
    public static let randomBytes = 32

    public let host: String
    public let text: String

    /// Parses a credential; nil for anything else (e.g. the cluster secret).
    public init?(_ text: String) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let rest = text.dropFirst(Self.prefix.count)
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        let host = String(rest[..<colon])
        let random = rest[rest.index(after: colon)...]
        guard Names.isValid(host), random.utf8.count == Self.randomBytes * 2,
            random.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        self.host = host
        self.text = text
    }

    /// A new credential for `host` (32 random bytes from the system's generator).
    public static func generate(for host: String) throws -> HostCredential {
        try Names.checkName(host, field: "host", kind: "host")
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<randomBytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }
        return HostCredential(Self.prefix + host + ":" + hex.joined())!
    }

    /// Writes the credential to `path` with mode 0600. An existing file is refused unless `replace`; then it is
    /// replaced atomically (a new file renamed over it), so a reader never sees half a credential.
    public func write(to path: String, replace: Bool) throws {
        try Self.install(try writeTemporary(beside: path), at: path, replace: replace)
    }

    /// Writes the credential (mode 0600, synced) to a new file in the directory of `path`; returns its path. With
    /// `install` this lets a caller make sure the file can be written before it tells anyone about the credential.
    public func writeTemporary(beside path: String) throws -> String {
        let temporary = path + ".new-\(getpid())"
        try PrivateFile(creating: temporary).finish(writing: Data((text + "\n").utf8))
        return temporary
    }

    /// Moves a file made by `writeTemporary` to `path`. Without `replace`, link(2) refuses an existing target, so a
    /// file made meanwhile is never overwritten; the temporary file is then kept and named in the error.
    public static func install(_ temporary: String, at path: String, replace: Bool) throws {
        if replace {
            guard rename(temporary, path) == 0 else {
                throw NetleaseError.badRequest(
                    "cannot write \(path): \(String(cString: strerror(errno))); the credential is in \(temporary)"
                )
            }
            return
        }
        guard link(temporary, path) == 0 else {
            throw NetleaseError.badRequest(
                "cannot write \(path): \(String(cString: strerror(errno))); the credential is in \(temporary)"
            )
        }
        unlink(temporary)
    }
}

/// A credential describes itself without its random bytes (logs, test failures).
extension HostCredential: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "HostCredential(host: \(host), redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["host": host], displayStyle: .struct) }
}
