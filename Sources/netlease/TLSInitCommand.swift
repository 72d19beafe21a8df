import ArgumentParser
import Foundation
import NetleaseCore

extension Netlease {
    struct TLS: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tls",
            abstract: "Make the cluster's TLS certificates.",
            subcommands: [Init.self]
        )
    }
}

extension Netlease.TLS {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a cluster CA, the coordinator's certificate and one client certificate per host.",
            discussion: """
                Writes into DIR (made 0700 when missing): ca.pem and ca.key (the CA), coordinator.pem and \
                coordinator.key, and NAME.pem and NAME.key for every --host. Keys are 0600, certificates 0644; \
                nothing is overwritten (an existing file stops the command before anything is written). Keys are \
                ECDSA P-256. The coordinator's certificate names every --coordinator-address and \
                --coordinator-name (clients with --tls-server-name check them); host certificates name nobody and \
                are for clients only (agents and admins). Keep ca.key on the admin machine or offline: only ca.pem \
                goes to the hosts. See docs/OPERATIONS.md, section TLS.
                """
        )

        @Option(help: ArgumentHelp("Directory to write the files into.", valueName: "dir")) var out: String
        @Option(
            help: ArgumentHelp(
                "An IPv4 or IPv6 address clients use to reach the coordinator (repeatable).",
                valueName: "ip"
            )
        )
        var coordinatorAddress: [String] = []
        @Option(
            help: ArgumentHelp("A DNS name clients use to reach the coordinator (repeatable).", valueName: "dns-name")
        )
        var coordinatorName: [String] = []
        @Option(
            help: ArgumentHelp(
                "A client certificate NAME.pem for an agent host or an admin (repeatable).",
                valueName: "name"
            )
        )
        var host: [String] = []
        @Option(help: ArgumentHelp("Days the CA stays valid.", valueName: "days"))
        var caDays = ClusterCertificates.caDays
        @Option(help: ArgumentHelp("Days the coordinator's and hosts' certificates stay valid.", valueName: "days"))
        var days = ClusterCertificates.certificateDays
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard !out.isEmpty else { throw ValidationError("--out must name a directory") }
            guard !coordinatorAddress.isEmpty || !coordinatorName.isEmpty else {
                throw ValidationError(
                    "give the coordinator's --coordinator-address or --coordinator-name (clients reach it by them)"
                )
            }
            for address in coordinatorAddress where (try? ClusterCertificates.addressBytes(address)) == nil {
                throw ValidationError("--coordinator-address '\(address)' is not an IPv4 or IPv6 address")
            }
            for name in coordinatorName where !Self.isDNSName(name) {
                throw ValidationError(
                    "--coordinator-name '\(name)' is not a DNS name (labels of letters, digits and '-', "
                        + "joined by '.')"
                )
            }
            var seen: Set<String> = []
            for name in host {
                guard Names.isValid(name) else {
                    throw ValidationError(
                        "--host '\(name)' must be 1-\(Names.maxNameBytes) ASCII letters, digits, '-', '_' or '.', "
                            + "starting with a letter or digit"
                    )
                }
                guard name != "ca", name != "coordinator" else {
                    throw ValidationError("--host '\(name)' would overwrite the \(name)'s own files; choose another")
                }
                guard seen.insert(name).inserted else { throw ValidationError("--host '\(name)' is given twice") }
            }
            guard (1...36_500).contains(caDays) else { throw ValidationError("--ca-days must be 1 to 36500") }
            guard (1...caDays).contains(days) else {
                throw ValidationError("--days must be 1 to --ca-days (\(caDays)): a certificate outliving its CA fails")
            }
        }

        func run() async throws {
            try await reportingErrors(json: json) {
                let certificates = try ClusterCertificates.make(
                    coordinator: .init(dnsNames: coordinatorName, addresses: coordinatorAddress),
                    hosts: host,
                    caDays: caDays,
                    days: days
                )
                let written = try ClusterCertificateFiles.write(certificates, to: out)
                if json {
                    try printJSON(["files": written])
                } else {
                    for file in written { print("\(file.mode)  \(file.path)") }
                    print(
                        "keep \(out)/ca.key on this machine or offline; hosts need ca.pem, their NAME.pem and NAME.key"
                    )
                }
            }
        }

        /// Letters, digits and '-' in labels of 1–63 bytes that neither start nor end with '-', joined by '.'; at
        /// most 253 bytes.
        static func isDNSName(_ name: String) -> Bool {
            guard !name.isEmpty, name.utf8.count <= 253 else { return false }
            return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                guard let first = label.utf8.first, let last = label.utf8.last, label.utf8.count <= 63,
                    first != UInt8(ascii: "-"), last != UInt8(ascii: "-")
                else { return false }
                return label.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a)
                        || byte == UInt8(ascii: "-")
                }
            }
        }
    }
}
