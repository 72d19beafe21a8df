import ArgumentParser
import Foundation
import NetleaseCore
import NetleaseStore
import NetleaseTransport

extension Netlease.HostCommand {
    struct Credential: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage host credentials: secrets that authenticate as one host only.",
            discussion: """
                An agent started with a host credential (as its --secret-file) may join, heartbeat and lease only \
                as that host; every other change is refused with 'forbidden'. The credential is made here, written \
                to a file with mode 0600, and only its salted hash is sent to the coordinator: the secret never \
                crosses the network and the coordinator never holds it. Issuing again replaces a host's credential \
                and closes the connections that used the old one; revoking deletes it and closes them too.
                """,
            subcommands: [Issue.self, Revoke.self, List.self]
        )

        struct Issue: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a new credential for a host, replacing any earlier one, and write it to a file."
            )
            @OptionGroup var client: ClientOptions
            @Argument(help: "Host name (as the agent joins).") var name: String
            @Option(
                help: ArgumentHelp(
                    "File to write the credential to, mode 0600 (default: NAME.credential).",
                    valueName: "file"
                )
            )
            var out: String?
            @Flag(help: "Replace an existing --out file.") var force = false
            @Flag(help: "Print the result as JSON.") var json = false

            var path: String { out ?? "\(name).credential" }

            func validate() throws {
                guard Names.isValid(name) else {
                    throw ValidationError(
                        "host name '\(name)' is not valid: 1-63 bytes, a letter or digit, then letters, digits, "
                            + "'-', '_', '.'"
                    )
                }
                if !force && FileManager.default.fileExists(atPath: path) {
                    throw ValidationError("\(path) exists; refusing to overwrite it (use --force to replace it)")
                }
                let directory = (path as NSString).deletingLastPathComponent
                guard access(directory.isEmpty ? "." : directory, W_OK) == 0 else {
                    throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
                }
            }

            func run() async throws {
                try await reportingErrors(json: json) {
                    let credential = try HostCredential.generate(for: name)
                    let hash = SecretHash(hashing: credential.text).stored
                    // Written (beside its place) before the coordinator learns the hash: a file that cannot be
                    // written never costs the host its working credential.
                    let temporary = try credential.writeTemporary(beside: path)
                    let result: (replaced: Bool, closed: Int)
                    do {
                        result = try await client.withConnection {
                            try await $0.setHostCredential(host: name, hash: hash)
                        }
                    } catch {
                        unlink(temporary)
                        throw error
                    }
                    try HostCredential.install(temporary, at: path, replace: force)
                    if json {
                        try printJSON(
                            CredentialJSON(host: name, file: path, replaced: result.replaced, closed: result.closed)
                        )
                    } else {
                        print(
                            "wrote the credential of host \(name) to \(path)"
                                + (result.replaced
                                    ? "; the previous one is revoked (\(result.closed) connection(s) closed)" : "")
                        )
                    }
                }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Revoke a host's credential and close the connections that use it."
            )
            @OptionGroup var client: ClientOptions
            @Argument(help: "Host name.") var name: String
            @Flag(help: "Print the result as JSON.") var json = false

            func run() async throws {
                try await reportingErrors(json: json) {
                    let result = try await client.withConnection { try await $0.revokeHostCredential(host: name) }
                    if json {
                        try printJSON(CredentialJSON(host: name, revoked: result.revoked, closed: result.closed))
                    } else if result.revoked {
                        print("revoked the credential of host \(name); \(result.closed) connection(s) closed")
                    } else {
                        print("host \(name) had no credential; \(result.closed) connection(s) closed")
                    }
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the hosts that have a credential.")
            @OptionGroup var client: ClientOptions
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                try await reportingErrors(json: json) {
                    let credentials = try await client.withConnection { try await $0.hostCredentials() }
                    if json {
                        return try printJSON(
                            credentials.map { CredentialJSON(host: $0.host, issued: TimeFormat.iso($0.issued)) }
                        )
                    }
                    var table = TextTable("HOST", "ISSUED")
                    for credential in credentials { table.add([credential.host, TimeFormat.iso(credential.issued)]) }
                    print(table.rendered)
                }
            }
        }
    }
}

/// `host credential … --json`.
struct CredentialJSON: Encodable {
    var host: String
    var file: String?
    var issued: String?
    var replaced: Bool?
    var revoked: Bool?
    var closed: Int?
}
