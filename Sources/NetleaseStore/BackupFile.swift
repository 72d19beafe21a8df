import Foundation
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// The file a backup is written into. A backup holds the whole store (every lease, the store id, the host
/// credentials' hashes), so it is made before SQLite sees it:
/// - with mode 0600 from its first moment, whatever the umask (SQLite would create it 0644 under umask 022, and a
///   local user could open it and keep reading while the copy is written; SQLite gives the journal it makes beside
///   the file the file's own mode);
/// - with `O_CREAT | O_EXCL`, which refuses anything at `path` — a file, or a symbolic link even when it dangles — so a
///   backup never overwrites or follows one, also when it appeared after a caller looked.
/// SQLite opens the empty file as a new database.
enum BackupFile {
    /// Creates the empty file at `path`; `conflict` when anything is there already (nothing is changed then).
    static func create(at path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = errno
            if reason == EEXIST {
                throw NetleaseError(.conflict, "\(path) exists; a backup never overwrites a file")
            }
            throw NetleaseError(.storage, "cannot create \(path): \(String(cString: strerror(reason)))")
        }
        close(descriptor)
    }
}
