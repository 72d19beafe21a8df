import Foundation
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// Decides whether a namespace file may receive a container's interface, and pins the one it accepted.
///
/// `ATTACH` runs as root and takes a path from whoever may use the local API. Any path used to be accepted, so
/// `netns=/proc/self/ns/net` made the agent add a veth to the host itself and replace the host's default route
/// (and a later DETACH left the host without one). A namespace is accepted only when:
/// - its path is plain (absolute, no `.`/`..`/empty components) and lies where runtimes keep container
///   namespaces: a name directly in `/run/netns`, `/var/run/netns` (`ip netns`, CNI, podman), `/run/docker/netns`,
///   `/var/run/docker/netns` (Docker), `/run/user/UID/netns` (rootless podman), or `/proc/PID/ns/net`;
/// - in those directories the file itself is not a symbolic link (runtimes bind-mount namespace files there; a
///   link could point anywhere). `/proc/PID/ns/net` is the kernel's own link and is followed;
/// - the file is a namespace (statfs magic NSFS_MAGIC) of type network (ioctl NS_GET_NSTYPE);
/// - it is neither the agent's own network namespace nor PID 1's (the host's), compared by device and inode —
///   which also catches a bind mount or `/proc/PID` of any process that shares them. (Where even root may not
///   look at PID 1's namespaces, inside some containers, only the agent's own is compared.)
///
/// The path rules say where to look; they cannot say what the path will lead to a moment later: the `netns`
/// directory under `/run/user/UID` is that user's to rename or replace with a link, and a PID is reused once its
/// process exits. So the file is opened once, every check runs on that descriptor, and the caller keeps it open
/// (`PinnedNamespace`) and enters the namespace only through it for the whole operation.
public struct NamespaceGuard: Sendable {
    /// Directories whose entries are runtimes' network namespaces.
    public static let runtimeDirectories = [
        "/run/netns", "/var/run/netns", "/run/docker/netns",
        "/var/run/docker/netns",
    ]

    /// The checks above, on the real file system.
    public static let system = NamespaceGuard(opener: NamespaceGuard.pinFile)

    /// Opens and checks the file of a namespace whose path is acceptable; `follow` says whether the last component
    /// may be a link. Injected so that tests of the command sequence need no real namespaces.
    let opener: @Sendable (_ namespace: NetworkNamespace, _ follow: Bool) async throws -> PinnedNamespace

    init(opener: @escaping @Sendable (_ namespace: NetworkNamespace, _ follow: Bool) async throws -> PinnedNamespace) {
        self.opener = opener
    }

    /// Opens `namespace` once and checks that descriptor; throws `invalidConfiguration`, saying why, unless it may
    /// receive a container's interface. The caller closes what it gets when its operation is over.
    public func pin(_ namespace: NetworkNamespace) async throws -> PinnedNamespace {
        try namespace.validate()
        let path = namespace.path
        guard let follow = Self.location(of: path) else {
            throw HostNetworkError(
                .invalidConfiguration,
                "\(path) is not a container's network namespace: use a name under /var/run/netns, a namespace in "
                    + "/run/netns, /run/docker/netns or /run/user/UID/netns, or /proc/PID/ns/net"
            )
        }
        return try await opener(namespace, follow)
    }

    /// Throws like `pin`, keeping nothing open.
    public func check(_ namespace: NetworkNamespace) async throws {
        try await pin(namespace).close()
    }

    /// Whether `path` is in an accepted place: nil when not; otherwise whether its last component may be followed
    /// (only the kernel's `/proc/PID/ns/net`).
    static func location(of path: String) -> Bool? {
        guard path.hasPrefix("/") else { return nil }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return nil }
        let isNumber = { (text: String) in !text.isEmpty && text.utf8.allSatisfy { (48...57).contains($0) } }
        if parts.count == 4, parts[0] == "proc", isNumber(parts[1]), parts[2] == "ns", parts[3] == "net" {
            return true
        }
        let directory = "/" + parts.dropLast().joined(separator: "/")
        if runtimeDirectories.contains(directory) { return false }
        // /run/user/UID/netns/NAME and /var/run/user/UID/netns/NAME (rootless podman).
        let user = parts.first == "var" ? Array(parts.dropFirst()) : parts
        if user.count == 5, user[0] == "run", user[1] == "user", isNumber(user[2]), user[3] == "netns" {
            return false
        }
        return nil
    }

    private static let nsfsMagic = 0x6e73_6673
    private static let nsGetNSType: UInt = 0xb703
    private static let cloneNewNet: Int32 = 0x4000_0000

    private typealias FstatfsFunction = @convention(c) (Int32, UnsafeMutableRawPointer) -> Int32

    /// `f_type` of fstatfs(2). Glibc's Swift module does not export <sys/vfs.h>, so the function is looked up with
    /// dlsym and its struct read as raw memory: `f_type` is its first field, a `long`, on every Linux ABI.
    private static func fileSystemType(_ fd: Int32, path: String) throws -> Int {
        guard let symbol = dlsym(nil, "fstatfs") else {
            throw HostNetworkError(.invalidConfiguration, "this C library has no fstatfs()")
        }
        let fstatfs = unsafeBitCast(symbol, to: FstatfsFunction.self)
        // struct statfs is 120 bytes on x86-64 and arm64; twice that leaves room for any other ABI.
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 16)
        defer { buffer.deallocate() }
        guard fstatfs(fd, buffer) == 0 else {
            throw HostNetworkError(.invalidConfiguration, "cannot statfs \(path): \(String(cString: strerror(errno)))")
        }
        return buffer.load(as: Int.self)
    }

    /// `pinning` on a thread of its own: finding the namespace's cookie enters it with setns(2), which a shared
    /// thread of the cooperative pool must never do.
    private static func pinFile(_ namespace: NetworkNamespace, follow: Bool) async throws -> PinnedNamespace {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PinnedNamespace, any Error>) in
            let thread = Thread {
                continuation.resume(with: Result { try pinning(namespace, follow: follow) })
            }
            thread.name = "netlease-netns-pin"
            thread.start()
        }
    }

    private static func pinning(_ namespace: NetworkNamespace, follow: Bool) throws -> PinnedNamespace {
        let path = namespace.path
        // O_NONBLOCK: a FIFO put where a namespace should be must not block the agent in open(2).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (follow ? 0 : O_NOFOLLOW))
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP {
                throw HostNetworkError(.invalidConfiguration, "\(path) is a symbolic link, not a namespace")
            }
            throw HostNetworkError(.invalidConfiguration, "cannot open \(path): \(String(cString: strerror(code)))")
        }
        do {
            let inode = try checkDescriptor(fd, path: path)
            var identity: NamespaceIdentity?
            if let boot = bootID, let cookie = try NetworkNamespace.cookie(descriptor: fd, name: namespace.description)
            {
                identity = NamespaceIdentity(boot: boot, cookie: cookie, inode: inode)
            }
            return PinnedNamespace(namespace: namespace, descriptor: fd, identity: identity)
        } catch {
            close(fd)
            throw error
        }
    }

    /// This boot's id; nil when the kernel does not say.
    private static let bootID: String? = {
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else {
            return nil
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }()

    /// The checks on the open file; returns its inode.
    private static func checkDescriptor(_ fd: Int32, path: String) throws -> UInt64 {
        guard try fileSystemType(fd, path: path) == nsfsMagic else {
            throw HostNetworkError(.invalidConfiguration, "\(path) is not a namespace file")
        }
        let type = ioctl(fd, nsGetNSType)
        // Kernels before 4.11 lack the ioctl (ENOTTY); the inode comparison below still holds then.
        if type >= 0 && type != cloneNewNet {
            throw HostNetworkError(.invalidConfiguration, "\(path) is a namespace, but not a network namespace")
        }
        var target = stat()
        guard fstat(fd, &target) == 0 else {
            throw HostNetworkError(.invalidConfiguration, "cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        for (protected, whose) in [("/proc/self/ns/net", "the agent's own"), ("/proc/1/ns/net", "the host's (PID 1)")] {
            var known = stat()
            guard stat(protected, &known) == 0 else {
                // Inside some containers even root may not look at PID 1's namespaces (PID 1 belongs to an outer
                // user namespace, or ptrace access is restricted). Then this agent cannot reach that namespace
                // either; its own is still compared, and that comparison must work.
                if protected == "/proc/1/ns/net" && (errno == EACCES || errno == EPERM) { continue }
                throw HostNetworkError(
                    .invalidConfiguration,
                    "cannot stat \(protected) to compare \(path) with it: \(String(cString: strerror(errno)))"
                )
            }
            if known.st_dev == target.st_dev && known.st_ino == target.st_ino {
                throw HostNetworkError(
                    .invalidConfiguration,
                    "\(path) is \(whose) network namespace; containers get their own"
                )
            }
        }
        return UInt64(target.st_ino)
    }
}
