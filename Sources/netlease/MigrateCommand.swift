import ArgumentParser
import Foundation
import Logging
import NetleaseCore
import NetleasePostgresStore
import NetleaseStore

extension Netlease {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a stopped coordinator's SQLite store into an empty PostgreSQL database.",
            discussion: """
                Stop the coordinator first (its store is held exclusively while it runs). Every network, host and \
                lease (reservations, quarantines and cooldowns included), the host credentials' hashes, the epoch \
                counter, the store id and the generation are copied in one transaction; the copy is read back and compared with the source. A \
                database holding any netlease rows, or one a coordinator has already used, is refused. The SQLite \
                store is not changed. Then start the coordinators with --store postgres://… and copy DIR's secret \
                files to the data directory of the first one.
                """
        )

        @Option(
            help: ArgumentHelp(
                "Data directory of the stopped coordinator (holding netlease.db).",
                valueName: "dir"
            )
        )
        var from: String

        @Option(
            help: ArgumentHelp(
                "The empty database: postgres://USER@HOST:PORT/DATABASE[?sslmode=…].",
                valueName: "url"
            )
        )
        var to: String

        @Option(
            help: ArgumentHelp(
                "File holding the database password (mode 0600); else PGPASSWORD.",
                valueName: "file"
            )
        )
        var toPasswordFile: String?

        func validate() throws {
            do { _ = try PostgresStoreURL(parsing: to) } catch let error as NetleaseError {
                throw ValidationError(error.message)
            }
        }

        func run() async throws {
            try await reportingErrors {
                let url = try PostgresStoreURL(parsing: to).withPassword(file: toPasswordFile)
                let file = (from as NSString).appendingPathComponent(SQLiteLeaseStore.fileName)
                guard FileManager.default.fileExists(atPath: file) else {
                    throw NetleaseError(.notFound, "\(file) does not exist: no SQLite store to copy")
                }
                var logger = Logger(label: "netlease.migrate")
                logger.logLevel = .warning
                let source = try SQLiteLeaseStore(directory: from, logger: logger)
                let contents: StoreContents
                let credentials: [StoredHostCredential]
                do {
                    contents = try source.contents()
                    credentials = try await source.hostCredentials()
                    source.close()
                } catch {
                    source.close()
                    throw error
                }
                let copied = try await PostgresLeaseStore.importContents(
                    contents,
                    into: url,
                    hostCredentials: credentials,
                    logger: logger
                )
                print(
                    """
                    copied store \(copied.storeID) at generation \(copied.generation) from \(file) to \(url)
                      \(copied.summary), last epoch \(copied.lastEpoch), \(credentials.count) host credential(s)
                    verified: the database holds exactly the rows of the source
                    """
                )
            }
        }
    }
}
