import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab

#if canImport(Glibc)
import Glibc
#endif

/// podman (Debian's 4.3.1, CNI backend) for one lab host: storage, run and temporary directories, CNI
/// configuration and plugin directories of its own inside the lab, so nothing system-wide is read or written.
///
/// Design notes (measured here, see TOOLCHAIN.md):
/// - Only the host's network namespace is entered (`nsenter --net`): podman needs the real /sys and cgroup tree.
/// - `crun` stops with "cgroups in hybrid mode not supported", so `--runtime /usr/sbin/runc`; systemd cgroups are
///   not there, so `--cgroup-manager cgroupfs`; setting RLIMIT_NOFILE/NPROC fails with EPERM, so
///   `default_ulimits = []` in the `CONTAINERS_CONF` file, whose `[network]` table also points the CNI backend at
///   this host's configuration and plugin directories.
/// - podman keeps each container's network namespace as a bind mount `/run/netns/cni-…` in the root mount
///   namespace; `podman rm` removes it. The names are recorded so a failed test removes what podman left.
final class LabPodman: @unchecked Sendable {
    // @unchecked: `namespaces` is guarded by `lock`; the rest is set in init.
    let lab: NamespaceLab
    let host: Int
    let directory: String
    private let lock = NSLock()
    private var namespaces: Set<String> = []
    private let runner = ProcessCommandRunner(timeout: .seconds(180))
    /// podman's libcni keeps each attachment's result under /var/lib/cni/results (removed again by DEL); when this
    /// lab's podman made the directory, the lab removes it again (only while it is empty).
    private let madeCNICache: Bool
    static let cniCacheDirectory = "/var/lib/cni"

    static let path = "/usr/bin/podman"
    static let runtime = "/usr/sbin/runc"
    static let image = "netlease-busybox:1"

    /// What is missing for the podman lab tests here, or nil. Names the Debian packages to install.
    static func capabilityProblem() -> String? {
        let files = FileManager.default
        for (path, package) in [
            (path, "podman"), (runtime, "runc"), ("/usr/lib/cni/bridge", "containernetworking-plugins"),
            (LabDocker.busyboxPath, "busybox-static"),
        ] where !files.isExecutableFile(atPath: path) {
            return "\(path) is missing: install Debian's \(package)"
        }
        return nil
    }

    /// - Parameters:
    ///   - conflist: the network's CNI configuration list (`netlease cni-config`).
    ///   - plugin: the `netlease-cni` executable, placed beside Debian's plugins.
    init(lab: NamespaceLab, host: Int, conflist: Data, plugin: String) throws {
        self.lab = lab
        self.host = host
        directory = (lab.directory as NSString).appendingPathComponent("podman-h\(host)")
        madeCNICache = !FileManager.default.fileExists(atPath: Self.cniCacheDirectory)
        let files = FileManager.default
        for name in ["cni-bin", "net.d", "tmp"] {
            try files.createDirectory(atPath: path(name), withIntermediateDirectories: true)
        }
        for name in try files.contentsOfDirectory(atPath: "/usr/lib/cni") {
            try files.createSymbolicLink(atPath: path("cni-bin/\(name)"), withDestinationPath: "/usr/lib/cni/\(name)")
        }
        try files.createSymbolicLink(atPath: path("cni-bin/netlease-cni"), withDestinationPath: plugin)
        try conflist.write(to: URL(fileURLWithPath: path("net.d/50-netlease.conflist")))
        let conf = """
            [containers]
            default_ulimits = []

            [network]
            network_backend = "cni"
            cni_plugin_dirs = ["\(path("cni-bin"))"]
            network_config_dir = "\(path("net.d"))"

            [engine]
            events_logger = "file"

            """
        try Data(conf.utf8).write(to: URL(fileURLWithPath: path("containers.conf")))
        lab.onDestroy { [self] in sweep() }
    }

    private func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Runs podman in the host's network namespace with this host's directories; throws when it exits non-zero.
    @discardableResult
    func podman(_ arguments: [String]) async throws -> CommandResult {
        try await runner.run(
            [
                "env", "CONTAINERS_CONF=\(path("containers.conf"))", "nsenter",
                "--net=/run/netns/\(lab.hostNamespace(host))", Self.path, "--root", path("root"), "--runroot",
                path("run"), "--tmpdir", path("tmp"), "--storage-driver", "vfs", "--runtime", Self.runtime,
                "--cgroup-manager", "cgroupfs",
            ] + arguments
        )
    }

    func importBusybox() async throws {
        try await podman(["import", try LabDocker.busyboxArchive(in: lab), Self.image])
    }

    /// `podman run -d --network NETWORK --name NAME` the busybox image sleeping; returns the container's address.
    /// - Parameter ip: `--ip`, the address to ask for.
    func run(_ name: String, network: String, ip: IPv4Address? = nil) async throws -> IPv4Address {
        try await start(name, network: network, ip: ip)
        return try await address(of: name)
    }

    /// `podman run -d --network NETWORK --name NAME` the busybox image sleeping, and nothing else.
    func start(_ name: String, network: String, ip: IPv4Address? = nil) async throws {
        let address = ip.map { ["--ip", $0.description] } ?? []
        try await podman(
            ["run", "-d", "--network", network] + address + ["--name", name, Self.image, "sleep", "3600"]
        )
    }

    /// The container's address, as podman reports it; records its network namespace for the sweep.
    func address(of name: String) async throws -> IPv4Address {
        let format = "{{.NetworkSettings.SandboxKey}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        let words = try await podman(["inspect", "-f", format, name]).stdout.split(separator: " ").map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let sandbox = words.first { lock.withLock { _ = namespaces.insert(sandbox) } }
        guard words.count == 2, let address = IPv4Address(words[1]) else {
            throw NetleaseError(.internalError, "podman inspect printed \(words)")
        }
        return address
    }

    /// Removes every container and image through podman (addresses are released while the agent still runs),
    /// then sweeps what is left. Returns the containers' network namespaces podman did not remove itself.
    @discardableResult
    func removeEverything() async -> [String] {
        _ = try? await podman(["rm", "--all", "--force", "--time", "0"])
        _ = try? await podman(["system", "reset", "--force"])
        let left = lock.withLock { namespaces }.filter { FileManager.default.fileExists(atPath: $0) }.sorted()
        sweep()
        return left
    }

    /// The last resort, also run by the lab's `destroy()`: kills processes started for this host's containers
    /// (conmon and the containers' own, found by this host's directory on their command line or in their cgroup)
    /// and removes the network namespaces podman left.
    func sweep() {
        for pid in leftoverProcesses() { kill(pid, SIGKILL) }
        for sandbox in lock.withLock({ namespaces }) where FileManager.default.fileExists(atPath: sandbox) {
            umount2(sandbox, Int32(MNT_DETACH))
            unlink(sandbox)
        }
        for mount in leftoverMounts() { umount2(mount, Int32(MNT_DETACH)) }
        if madeCNICache {
            // rmdir(2), not a recursive removal: what another runtime keeps there stays.
            rmdir(Self.cniCacheDirectory + "/results")
            rmdir(Self.cniCacheDirectory)
        }
    }

    /// Processes of this host's podman: conmon and the containers carry this host's directory on their command
    /// line (the trailing slash keeps host 1 from matching host 10).
    func leftoverProcesses() -> [pid_t] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
            .filter { pid in
                guard pid != me else { return false }
                let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                return String(decoding: cmdline, as: UTF8.self).contains(directory + "/")
            }
    }

    /// Mount points under this host's directory, and network namespaces of its containers still mounted.
    func leftoverMounts() -> [String] {
        let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let sandboxes = lock.withLock { namespaces }
        return table.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = String(fields[4])
            return point.hasPrefix(directory + "/") || sandboxes.contains(point) ? point : nil
        }
    }
}
