import Foundation
import HostNetwork
import NetleaseCore
import NetleaseTesting
import XCTest

/// `scripts/package-deb.sh` on the debug build: the package's tree as it would be shipped (binaries, units pointing
/// at /usr/bin, configuration examples as conffiles, completions the shells accept, control files), without the
/// release build, the man pages and lintian, which `scripts/test-deb.sh` covers.
final class PackageLayoutTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    var scratch: URL!

    override func setUp() async throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("netlease-package-\(UUID())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    private func packageScript(_ arguments: [String]) throws -> ExecutableRun {
        for tool in ["/usr/bin/dpkg-shlibdeps", "/usr/bin/strip", "/bin/bash"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            try missingCapability("\(tool) is missing: the package script needs dpkg-dev and binutils")
        }
        let output = try ChildProcess.run(
            executable: "/bin/bash",
            arguments: [Self.repository.appendingPathComponent("scripts/package-deb.sh").path] + arguments,
            environment: BuiltExecutable.cleanEnvironment(),
            timeout: .seconds(300)
        )
        XCTAssertFalse(output.timedOut, "package-deb.sh did not finish")
        return ExecutableRun(
            stdout: String(decoding: output.stdout, as: UTF8.self),
            stderr: String(decoding: output.stderr, as: UTF8.self),
            status: output.termination.shellStatus
        )
    }

    private func binDirectory() throws -> String {
        URL(fileURLWithPath: try BuiltExecutable.path("netlease")).deletingLastPathComponent().path
    }

    private func text(_ tree: URL, _ path: String) throws -> String {
        try String(contentsOf: tree.appendingPathComponent(path), encoding: .utf8)
    }

    private func mode(_ tree: URL, _ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: tree.appendingPathComponent(path).path)
        return try XCTUnwrap(attributes[.posixPermissions] as? NSNumber).intValue
    }

    func testTheTreeHoldsWhatAnOperatorInstalls() async throws {
        let tree = scratch.appendingPathComponent("tree")
        let run = try packageScript([
            "--bin-dir", try binDirectory(), "--allow-dynamic", "--no-manual", "--stage-only", tree.path,
        ])
        XCTAssertEqual(run.status, 0, run.stderr)

        for (path, expected) in [
            ("usr/bin/netlease", 0o755), ("usr/lib/cni/netlease-cni", 0o755),
            ("lib/systemd/system/netlease-coordinator.service", 0o644),
            ("lib/systemd/system/netlease-agent.service", 0o644), ("etc/netlease/coordinator.env.example", 0o644),
            ("etc/netlease/agent.env.example", 0o644), ("usr/share/doc/netlease/copyright", 0o644),
            ("usr/share/doc/netlease/README.Debian", 0o644), ("usr/share/doc/netlease/changelog.gz", 0o644),
            ("usr/share/doc/netlease/examples/netlease.conflist.example", 0o644), ("DEBIAN/postinst", 0o755),
            ("DEBIAN/prerm", 0o755), ("DEBIAN/postrm", 0o755),
        ] {
            XCTAssertEqual(try mode(tree, path), expected, path)
        }

        // The units start the packaged binary.
        for unit in ["netlease-coordinator", "netlease-agent"] {
            let text = try text(tree, "lib/systemd/system/\(unit).service")
            XCTAssertTrue(text.contains("ExecStart=/usr/bin/netlease "), unit)
            XCTAssertFalse(text.contains("/usr/local/bin"), unit)
        }

        // Every file under /etc is a conffile, so an upgrade keeps an operator's edits.
        let conffiles = try text(tree, "DEBIAN/conffiles").split(separator: "\n").map(String.init)
        XCTAssertEqual(
            conffiles.sorted(),
            ["/etc/netlease/agent.env.example", "/etc/netlease/coordinator.env.example"]
        )

        // The control file carries the binary's own version and the libraries it links.
        let version = try await BuiltExecutable.run("netlease", ["--version"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let control = try text(tree, "DEBIAN/control")
        XCTAssertTrue(control.contains("\nVersion: \(version)\n"), control)
        XCTAssertTrue(control.hasPrefix("Package: netlease\n"), control)
        XCTAssertTrue(control.contains("\nArchitecture: amd64\n"), control)
        let depends = try XCTUnwrap(control.split(separator: "\n").first { $0.hasPrefix("Depends: ") })
        for package in ["adduser", "iproute2", "libc6", "libsqlite3-0"] {
            XCTAssertTrue(depends.contains(package), "\(depends) lacks \(package)")
        }

        // md5sums lists every shipped file.
        let sums = try text(tree, "DEBIAN/md5sums").split(separator: "\n").map { String($0.dropFirst(34)) }
        XCTAssertTrue(sums.contains("usr/bin/netlease"), "\(sums)")
        XCTAssertTrue(sums.contains("lib/systemd/system/netlease-agent.service"), "\(sums)")
        XCTAssertFalse(sums.contains { $0.hasPrefix("DEBIAN/") })

        // The maintainer scripts are valid sh and make the system user.
        for script in ["postinst", "prerm", "postrm"] {
            let check = try ChildProcess.run(
                executable: "/bin/sh",
                arguments: ["-n", tree.appendingPathComponent("DEBIAN/\(script)").path],
                timeout: .seconds(30)
            )
            XCTAssertEqual(check.termination.shellStatus, 0, script)
        }
        XCTAssertTrue(try text(tree, "DEBIAN/postinst").contains("adduser --system --group"))

        try assertCompletions(in: tree)
    }

    /// bash, zsh and fish each get a completion script the shell accepts.
    private func assertCompletions(in tree: URL) throws {
        let bash = tree.appendingPathComponent("usr/share/bash-completion/completions/netlease").path
        let defined = try ChildProcess.run(
            executable: "/bin/bash",
            arguments: ["-c", "source \"$0\" && complete -p netlease", bash],
            environment: BuiltExecutable.cleanEnvironment(),
            timeout: .seconds(30)
        )
        let line = String(decoding: defined.stdout, as: UTF8.self)
        XCTAssertEqual(defined.termination.shellStatus, 0, String(decoding: defined.stderr, as: UTF8.self))
        XCTAssertTrue(line.hasPrefix("complete ") && line.hasSuffix(" netlease\n"), line)
        XCTAssertFalse(try text(tree, "usr/share/bash-completion/completions/netlease").hasPrefix("#!"))
        XCTAssertTrue(try text(tree, "usr/share/zsh/vendor-completions/_netlease").hasPrefix("#compdef netlease"))
        XCTAssertTrue(
            try text(tree, "usr/share/fish/vendor_completions.d/netlease.fish").contains("complete -c 'netlease'")
        )
        // Every subcommand is offered, tls included.
        XCTAssertTrue(try text(tree, "usr/share/bash-completion/completions/netlease").contains("tls"))
    }

    /// A release must run where no Swift is installed: binaries that link the Swift runtime dynamically (a debug
    /// build) are refused unless --allow-dynamic says this is not a release.
    func testABinaryNeedingTheSwiftRuntimeIsRefused() throws {
        let run = try packageScript([
            "--bin-dir", try binDirectory(), "--no-manual", "--stage-only", scratch.appendingPathComponent("t").path,
        ])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains("needs libraries a Swift-free machine lacks"), run.stderr)
        XCTAssertTrue(run.stderr.contains("libswiftCore"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("t").path))
    }

    func testBadOptionsAreUsageErrors() throws {
        let existing = try packageScript(["--bin-dir", try binDirectory(), "--stage-only", scratch.path])
        XCTAssertEqual(existing.status, 64)
        XCTAssertTrue(existing.stderr.contains("--stage-only \(scratch.path) exists"), existing.stderr)
        let unknown = try packageScript(["--frobnicate"])
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.stderr.contains("unknown option --frobnicate"), unknown.stderr)
        let manual = try packageScript(["--no-manual"])
        XCTAssertEqual(manual.status, 64)
        XCTAssertTrue(manual.stderr.contains("--no-manual only with --stage-only"), manual.stderr)
    }
}
