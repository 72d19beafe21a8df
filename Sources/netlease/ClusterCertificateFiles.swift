import Foundation
import NetleaseCore

/// Writes `ClusterCertificates` into one directory: `NAME.pem` (0644) and `NAME.key` (0600) for the CA, the
/// coordinator and every host.
///
/// Nothing is ever overwritten: every file is checked before the first is written, and each is created with
/// `O_EXCL` and its final mode (a key is never readable by others, not even for a moment). If a write fails halfway,
/// the files written so far are removed again, so a directory holds either the whole set or what it held before.
enum ClusterCertificateFiles {
    struct Written: Encodable {
        var path: String
        var mode: String
    }

    static let keyMode: mode_t = 0o600
    static let certificateMode: mode_t = 0o644

    static func write(_ certificates: ClusterCertificates, to directory: String) throws -> [Written] {
        try makeDirectory(directory)
        let files = certificates.all.flatMap { issued in
            [
                (path: "\(directory)/\(issued.name).pem", text: issued.certificatePEM, mode: certificateMode),
                (path: "\(directory)/\(issued.name).key", text: issued.privateKeyPEM, mode: keyMode),
            ]
        }
        for file in files where FileManager.default.fileExists(atPath: file.path) {
            throw NetleaseError.badRequest("\(file.path) exists; tls init never overwrites a file (nothing written)")
        }
        var written: [Written] = []
        do {
            for file in files {
                try create(file.path, text: file.text, mode: file.mode)
                written.append(Written(path: file.path, mode: String(file.mode, radix: 8)))
            }
        } catch {
            for file in written { unlink(file.path) }
            throw error
        }
        return written
    }

    /// A missing directory is made 0700 (it will hold the CA's key); an existing one is used as it is.
    private static func makeDirectory(_ directory: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw NetleaseError.badRequest("--out \(directory) is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw NetleaseError.badRequest("--out \(directory) cannot be created (\(error.localizedDescription))")
        }
    }

    private static func create(_ path: String, text: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw NetleaseError.badRequest("\(path) cannot be created (\(String(cString: strerror(errno))))")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            // The umask may have taken bits away from a certificate's 0644; set the mode exactly.
            guard fchmod(descriptor, mode) == 0 else {
                throw NetleaseError(.storage, "\(path): cannot set mode (\(String(cString: strerror(errno))))")
            }
            try handle.write(contentsOf: Data(text.utf8))
            try handle.synchronize()
        } catch {
            unlink(path)
            if let error = error as? NetleaseError { throw error }
            throw NetleaseError(.storage, "\(path) cannot be written (\(error.localizedDescription))")
        }
    }
}
