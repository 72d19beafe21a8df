/// A network namespace to put a container's interface into.
public enum NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
    /// A namespace created with `ip netns add NAME`, i.e. the file /var/run/netns/NAME.
    case named(String)
    /// Any namespace file, e.g. /proc/PID/ns/net or a runtime's bind mount.
    case path(String)

    /// The namespace file.
    public var path: String {
        switch self {
        case .named(let name): return "/var/run/netns/" + name
        case .path(let path): return path
        }
    }

    public var description: String {
        switch self {
        case .named(let name): return "netns \(name)"
        case .path(let path): return "netns \(path)"
        }
    }

    /// The words that run a command inside the namespace.
    ///
    /// `ip -n NAME` accepts only names under /var/run/netns, while `ip link set … netns X` opens X as a file when it
    /// contains '/'. `nsenter --net=FILE` takes any namespace file, so every command inside a container goes through
    /// it, for names and paths alike.
    var enterPrefix: [String] { ["nsenter", "--net=" + path] }

    func validate() throws {
        switch self {
        case .named(let name):
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw HostNetworkError(.invalidConfiguration, "'\(name)' is not a network namespace name")
            }
        case .path(let path):
            guard path.hasPrefix("/"), !path.contains("\0") else {
                throw HostNetworkError(.invalidConfiguration, "'\(path)' is not an absolute namespace path")
            }
        }
    }
}
