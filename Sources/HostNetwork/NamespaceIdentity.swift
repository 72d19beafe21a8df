/// Which network namespace a file leads to, in a form that a later namespace cannot share, even at the same path.
///
/// Design notes (measured on this kernel, 6.18): a namespace's inode number is freed with it and handed to the next
/// namespace made — `ip netns add x; ip netns del x` four times gave inodes …177, …245, …178, …177 — so device and
/// inode alone would take `ip netns del web1; ip netns add web1` for the same namespace. The kernel's namespace
/// cookie (`SO_NETNS_COOKIE`, Linux 5.14) comes from a counter that never goes back while the system runs; with the
/// boot id it is unique across reboots too (a reboot ends every namespace, and the counter starts again).
public struct NamespaceIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `/proc/sys/kernel/random/boot_id` when the namespace was looked at.
    public var boot: String
    /// The namespace's cookie.
    public var cookie: UInt64
    /// The namespace file's inode (`net:[INODE]` in `/proc/PID/ns/net`), for people; compared too.
    public var inode: UInt64

    public init(boot: String, cookie: UInt64, inode: UInt64) {
        self.boot = boot
        self.cookie = cookie
        self.inode = inode
    }

    public var description: String { "net:[\(inode)] cookie \(cookie)" }
}
