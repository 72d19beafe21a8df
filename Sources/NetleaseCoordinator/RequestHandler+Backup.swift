import Foundation
import NetleaseCore
import NetleaseWire

extension RequestHandler {
    /// BACKUP: a consistent copy of the store, sent as base64 `DATA` records. It goes through a temporary file
    /// because the store's backup writes a new file while the store keeps serving; the store makes that file 0600
    /// before anything is in it, so the copy in the shared temporary directory is never readable by others.
    func backup() async throws -> Reply {
        let path = (NSTemporaryDirectory() as NSString)
            .appendingPathComponent("netlease-backup-\(UInt64.random(in: 0...UInt64.max)).db")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let identity = try await store.backup(to: path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NetleaseError(.storage, "cannot read the backup just written")
        }
        var records: [Fields] = []
        var offset = 0
        while offset < data.count {
            let end = min(offset + WireCodec.backupChunkBytes, data.count)
            records.append(["b64": data[offset..<end].base64EncodedString()])
            offset = end
        }
        logger.info("backup taken", metadata: ["bytes": "\(data.count)", "generation": "\(identity.generation)"])
        return .list(
            header: [
                "bytes": String(data.count), "store": identity.id,
                "generation": String(identity.generation),
            ],
            tag: WireCodec.dataTag,
            records: records
        )
    }
}
