import Foundation
import HostNetwork
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// A Docker daemon (Debian's `docker.io`) for one lab host: it runs in the host's network namespace, finds the
/// netlease IPAM plugin through a spec file of its own, and is removed with everything it started.
///
/// Design notes:
/// - `ip netns exec` remounts /sys, and dockerd then stops with "Devices cgroup isn't mounted"; so only the network
///   namespace is entered (nsenter --net).
/// - Each daemon needs its own /etc/docker/plugins (every host's agent is plugin "netlease"), hence a private mount
///   namespace in which this lab's directory is bound over /etc/docker. The namespace is held by a `sleep` process,
///   and every dockerd of the host is started inside it: dockerd keeps its containers' network namespaces as bind
///   mounts under its exec root, and a restarted dockerd in a fresh mount namespace would not find them — it would
///   declare the live containers' endpoints stale and release their addresses. (On a real host there is one mount
///   namespace and none of this arises.)
/// - dockerd creates /run/docker/plugins whatever its exec root, and a private mount namespace does not keep that
///   off the host's /run: when this lab's daemon made it, the lab removes it again (only while it is empty).
/// - With `--live-restore` containers outlive their daemon, so removal goes through the daemon first (`docker rm
///   -f`, which also releases their addresses through the plugin while the agent still runs); a last sweep kills
///   whatever is left of this daemon's containers by their cgroup, and its shims by their command line, which names
///   this lab's own directory.
public final class LabDocker: @unchecked Sendable {
    // @unchecked: `holder` and `daemon` are guarded by `lock`; the rest is set in init.
    public let lab: NamespaceLab
    public let host: Int
    public let directory: String
    public let socket: String
    private let lock = NSLock()
    private var holder: LabProcess?
    private var daemon: LabProcess?
    private var starts = 0
    /// Twenty `docker run`s at once on two cores can take longer than the lab's usual command timeout.
    private let runner = ProcessCommandRunner(timeout: .seconds(180))
    /// /run/docker did not exist before this daemon: the lab takes away what dockerd leaves there.
    private let madeRunDocker: Bool
    static let runDirectory = "/run/docker"

    public static let daemonPath = "/usr/sbin/dockerd"
    /// Debian's client; the `docker` first on PATH may be a client without an engine of another version.
    public static let clientPath = "/usr/bin/docker"
    public static let busyboxPath = "/bin/busybox"
    /// The image every lab container runs: busybox and its applets, imported without a registry.
    public static let image = "netlease-busybox:1"

    /// What is missing for Docker lab tests here, or nil. Names the Debian packages to install.
    public static func capabilityProblem() -> String? {
        let files = FileManager.default
        for path in [daemonPath, clientPath, "/usr/bin/containerd", "/usr/sbin/runc"]
        where !files.isExecutableFile(atPath: path) {
            return "\(path) is missing: install Debian's docker.io"
        }
        guard files.isExecutableFile(atPath: busyboxPath) else {
            return "\(busyboxPath) is missing: install Debian's busybox-static"
        }
        for tool in ["nsenter", "unshare"] where (try? ProcessCommandRunner().resolve(tool)) == nil {
            return "\(tool) is missing: install util-linux"
        }
        return nil
    }

    /// - Parameter pluginSocket: the agent's `--docker-plugin` socket, named in this daemon's plugin spec file.
    public init(lab: NamespaceLab, host: Int, pluginSocket: String) throws {
        self.lab = lab
        self.host = host
        directory = (lab.directory as NSString).appendingPathComponent("docker-h\(host)")
        socket = (directory as NSString).appendingPathComponent("docker.sock")
        let plugins = (directory as NSString).appendingPathComponent("etc/plugins")
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try Data("unix://\(pluginSocket)\n".utf8).write(
            to: URL(fileURLWithPath: (plugins as NSString).appendingPathComponent("netlease.spec"))
        )
        madeRunDocker = !FileManager.default.fileExists(atPath: Self.runDirectory)
        lab.onDestroy { [self] in sweep() }
    }

    private func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Starts dockerd (with `--live-restore`) and returns once it answers.
    public func start() async throws {
        let holder = try await mountNamespaceHolder()
        let count = lock.withLock { () -> Int in
            starts += 1
            return starts
        }
        let process = try LabProcess(
            argv: [
                "nsenter", "--mount=/proc/\(holder.pid)/ns/mnt", "--net=/run/netns/\(lab.hostNamespace(host))",
                Self.daemonPath, "--storage-driver=vfs", "--iptables=false", "--ip-masq=false", "--bridge=none",
                "--live-restore", "--data-root", path("data"), "--exec-root", path("exec"), "-H", "unix://\(socket)",
                "--pidfile", path("dockerd.pid"),
            ],
            name: "dockerd-h\(host)-\(count)",
            logPath: path("dockerd-\(count).log")
        )
        lock.withLock { daemon = process }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if (try? await docker(["version", "--format", "{{.Server.Version}}"])) != nil { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw NetleaseError(.unavailable, "dockerd on host \(host) did not start:\n\(tail(process.log))")
    }

    /// Stops dockerd with SIGTERM (containers keep running: `--live-restore`).
    public func stop() async {
        guard
            let process = lock.withLock({ () -> LabProcess? in
                defer { daemon = nil }
                return daemon
            })
        else {
            return
        }
        await Self.blocking { process.stop(grace: .seconds(20)) }
    }

    /// The process that holds this host's private mount namespace, started on first use.
    private func mountNamespaceHolder() async throws -> LabProcess {
        if let holder = lock.withLock({ holder }) { return holder }
        let etc = path("etc")
        let process = try LabProcess(
            argv: [
                "nsenter", "--net=/run/netns/\(lab.hostNamespace(host))", "unshare", "--mount", "--propagation",
                "private", "sh", "-c",
                "mount --bind \(ShellQuote.quote(etc)) /etc/docker && echo held && exec sleep infinity",
            ],
            name: "docker-mounts-h\(host)",
            logPath: path("mounts.log")
        )
        lock.withLock { holder = process }
        guard await process.line(containing: "held", timeout: .seconds(10)) != nil else {
            throw NetleaseError(.unavailable, "cannot make a mount namespace for dockerd:\n\(process.log)")
        }
        return process
    }

    /// Runs the Docker client against this daemon; throws when it exits non-zero.
    @discardableResult
    public func docker(_ arguments: [String]) async throws -> CommandResult {
        try await runner.run([Self.clientPath, "-H", "unix://\(socket)"] + arguments)
    }

    /// Runs the Docker client and returns its result whatever the exit status (for refusals a test expects).
    public func dockerAllowingFailure(_ arguments: [String]) async -> CommandResult {
        do {
            return try await docker(arguments)
        } catch let error as HostNetworkError {
            return CommandResult(
                stdout: "",
                stderr: error.stderr.isEmpty ? error.message : error.stderr,
                status: error.status ?? 1
            )
        } catch {
            return CommandResult(stdout: "", stderr: "\(error)", status: 1)
        }
    }

    /// Imports `image`: a root file system of busybox and the applets the tests use.
    public func importBusybox() async throws {
        let archive = try Self.busyboxArchive(in: lab)
        try await docker(["import", archive, Self.image])
    }

    /// Builds the image's tar once per lab.
    public static func busyboxArchive(in lab: NamespaceLab) throws -> String {
        let archive = (lab.directory as NSString).appendingPathComponent("busybox-rootfs.tar")
        if FileManager.default.fileExists(atPath: archive) { return archive }
        let root = (lab.directory as NSString).appendingPathComponent("busybox-rootfs")
        let bin = (root as NSString).appendingPathComponent("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: busyboxPath,
            toPath: (bin as NSString).appendingPathComponent("busybox")
        )
        for applet in ["sh", "ip", "ping", "sleep", "cat", "arping"] {
            try FileManager.default.createSymbolicLink(
                atPath: (bin as NSString).appendingPathComponent(applet),
                withDestinationPath: "busybox"
            )
        }
        let result = try ChildProcess.run(
            executable: try ProcessCommandRunner().resolve("tar"),
            arguments: ["-C", root, "-cf", archive, "."],
            timeout: .seconds(30)
        )
        guard result.termination.shellStatus == 0 else {
            throw NetleaseError(.internalError, "tar failed: \(String(decoding: result.stderr, as: UTF8.self))")
        }
        return archive
    }

    /// Removes every container through the daemon (their addresses are released while the agent still runs), then
    /// stops the daemon and its mount namespace, then sweeps up anything left. Call before the lab is destroyed.
    public func removeEverything() async {
        if lock.withLock({ daemon }) != nil {
            let ids = (try? await docker(["ps", "-aq"]).stdout.split(separator: "\n").map(String.init)) ?? []
            if !ids.isEmpty { _ = try? await docker(["rm", "-f"] + ids) }
            let networks =
                (try? await docker(["network", "ls", "-q", "--filter", "driver=bridge"]).stdout
                    .split(separator: "\n").map(String.init)) ?? []
            for network in networks { _ = try? await docker(["network", "rm", network]) }
        }
        await stop()
        await Self.blocking { self.sweep() }
    }

    /// The last resort, also run by the lab's `destroy()`: kills the daemon, its containers' processes and shims,
    /// and the mount namespace holder. Blocking.
    func sweep() {
        let (daemon, holder) = lock.withLock { () -> (LabProcess?, LabProcess?) in
            defer {
                self.daemon = nil
                self.holder = nil
            }
            return (self.daemon, self.holder)
        }
        daemon?.stop(grace: .seconds(5))
        for pid in leftoverProcesses() { kill(pid, SIGKILL) }
        holder?.stop(grace: .seconds(1))
        if madeRunDocker {
            // rmdir(2), not a recursive removal: anything another daemon put there stays.
            rmdir(Self.runDirectory + "/plugins")
            rmdir(Self.runDirectory)
        }
    }

    /// Processes this daemon left: its containers' (by the container ids in their cgroup) and its containerd and
    /// shims (by this lab's directory on their command line).
    public func leftoverProcesses() -> [pid_t] {
        let containers = (try? FileManager.default.contentsOfDirectory(atPath: path("data/containers"))) ?? []
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
        let me = getpid()
        return pids.filter { pid in
            guard pid != me else { return false }
            let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            // The trailing slash keeps host 1's directory from matching host 10's.
            if String(decoding: cmdline, as: UTF8.self).contains(directory + "/") { return true }
            guard !containers.isEmpty,
                let cgroup = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)
            else { return false }
            return containers.contains { cgroup.contains($0) }
        }
    }

    private func tail(_ text: String) -> String { text.split(separator: "\n").suffix(20).joined(separator: "\n") }

    /// Runs blocking work (waiting for processes) on a thread of its own, off the cooperative pool.
    static func blocking(_ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                work()
                continuation.resume()
            }
        }
    }
}
