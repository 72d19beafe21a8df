import Foundation
import NetleaseCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every change the agent makes to files: its state directory, the state files in it, and the mode and group of the
/// local API socket. One place, so that every state file is written the same crash-safe way.
///
/// A state file is replaced atomically: the new content goes to a temporary file in the same directory (same file
/// system, so `rename` is atomic), is fsynced, renamed over the old file, and the directory is fsynced so the rename
/// itself survives a power loss. A reader (or the agent after `kill -9`) sees the old content or the new, never a
/// truncated file; a failed write leaves the old content and no temporary file behind.
struct LocalFileSystem: Sendable {
    /// Creates `path` (and missing parents) with `mode`; an existing directory is left as it is.
    func createDirectory(_ path: String, mode: mode_t) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: Int(mode)]
            )
        } catch {
            throw NetleaseError(.storage, "cannot create directory \(path): \(error)")
        }
    }

    /// The file's content; nil when it does not exist or cannot be read.
    func contents(of path: String) -> Data? {
        FileManager.default.contents(atPath: path)
    }

    /// Replaces `path` with `data` atomically and durably; the file ends up with exactly `mode` (umask aside).
    func writeAtomically(_ data: Data, to path: String, mode: mode_t) throws {
        let directory = (path as NSString).deletingLastPathComponent
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw Self.failure("cannot create a temporary file beside", path) }
        let temporary = String(cString: template)
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            guard fchmod(fd, mode) == 0 else { throw Self.failure("cannot set the mode of", temporary) }
            try Self.writeAll(data, to: fd, path: temporary)
            guard fsync(fd) == 0 else { throw Self.failure("cannot fsync", temporary) }
        }
        guard rename(temporary, path) == 0 else { throw Self.failure("cannot replace", path) }
        renamed = true
        try Self.syncDirectory(directory.isEmpty ? "." : directory)
    }

    /// Sets a file's permission bits (the local API socket: 0660).
    func setMode(_ mode: mode_t, of path: String) throws {
        guard chmod(path, mode) == 0 else { throw Self.failure("cannot set the mode of", path) }
    }

    /// Gives a file to a group by name, keeping its owner (the local API socket, for `--socket-group`).
    func setGroup(_ group: String, of path: String) throws {
        guard let entry = getgrnam(group) else {
            throw NetleaseError(.badRequest, "unknown group '\(group)' for \(path)")
        }
        guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
            throw Self.failure("cannot give \(group) the group of", path)
        }
    }

    private static func writeAll(_ data: Data, to fd: Int32, path: String) throws {
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw failure("cannot write", path)
                }
                offset += written
            }
        }
    }

    /// Makes a rename in `directory` durable: without it a crash can bring back the old directory entry.
    private static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open directory", directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("cannot fsync directory", directory) }
    }

    private static func failure(_ what: String, _ path: String) -> NetleaseError {
        NetleaseError(.storage, "\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
