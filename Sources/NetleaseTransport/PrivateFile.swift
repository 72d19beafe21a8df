import Foundation
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// A new file that only its owner can read, for what must never be seen by other local users (a backup of the
/// store, the cluster secret, a host credential).
///
/// Made with `open(O_CREAT | O_EXCL | O_NOFOLLOW, 0600)` and written through that one descriptor: the file has mode
/// 0600 from its first moment whatever the umask, and no temporary file ever holds the data under another name or
/// mode. `O_EXCL` refuses anything already at the path — a file, or a symbolic link even when it dangles — so
/// nothing is overwritten or followed, also when it appeared after a caller looked. Creating first lets a caller
/// claim the name before it fetches what to write.
public final class PrivateFile {
    public let path: String
    private var descriptor: Int32

    /// Creates the file; an error with `code` naming `path` when it cannot, and when anything is there already (it
    /// is left as it is). `code`: `bad-request` for a path a user gave, `storage` for a daemon's own files.
    public init(creating path: String, code: ErrorCode = .badRequest) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = errno
            if reason == EEXIST {
                throw NetleaseError(code, "\(path) exists; it is never overwritten (nothing written)")
            }
            throw NetleaseError(code, "cannot create \(path): \(String(cString: strerror(reason)))")
        }
        self.path = path
        self.descriptor = descriptor
    }

    deinit { discard() }

    /// Writes `data`, syncs it to disk and closes the file. On failure the file is removed and the error names it.
    public func finish(writing data: Data) throws {
        precondition(descriptor >= 0, "PrivateFile used after finish or discard")
        var offset = 0
        var failure: Int32 = 0
        data.withUnsafeBytes { bytes in
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == 0, fsync(descriptor) != 0 { failure = errno }
        guard failure == 0 else {
            discard()
            throw NetleaseError(.storage, "cannot write \(path): \(String(cString: strerror(failure)))")
        }
        close(descriptor)
        descriptor = -1
    }

    /// Closes and removes the file (what was to go in it failed); nothing once it is finished.
    public func discard() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        unlink(path)
    }
}
