import ArgumentParser
import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTransport

extension Netlease {
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a consistent online copy of the coordinator's store (needs admin credentials).",
            discussion: """
                The copy is an SQLite file holding exactly the changes acknowledged before it was taken. To restore: \
                stop the coordinator, move its DIR/netlease.db* away, copy the backup to DIR/netlease.db (mode \
                0600), start it. Agents notice the older generation, reconcile what they use, and report it in \
                'netlease doctor'. See docs/OPERATIONS.md.
                """
        )
        @OptionGroup var client: ClientOptions
        @Option(
            help: ArgumentHelp(
                "File to create (mode 0600); refused when anything, even a symbolic link, is there.",
                valueName: "file"
            )
        ) var out: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reportingErrors(json: json) {
                // Created (0600, exclusively) before the coordinator is asked: an existing name is refused at once.
                let file = try PrivateFile(creating: out)
                let backup: (data: Data, store: String, generation: Int64)
                do {
                    backup = try await client.withConnection { try await $0.backup() }
                } catch {
                    file.discard()
                    throw error
                }
                try file.finish(writing: backup.data)
                if json {
                    try printJSON(
                        BackupJSON(
                            store: backup.store,
                            generation: backup.generation,
                            bytes: backup.data.count,
                            file: out
                        )
                    )
                } else {
                    print(
                        "backup of store \(backup.store) at generation \(backup.generation): "
                            + "\(backup.data.count) bytes -> \(out)"
                    )
                }
            }
        }
    }
}
