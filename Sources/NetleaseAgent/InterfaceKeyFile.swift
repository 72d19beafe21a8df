import Foundation
import HostNetwork
import NetleaseCore

/// `interface-key` in the state directory: the secret that names this host's container links (see
/// `ContainerNaming`). Made once, at the first start, and kept: a new key would rename every container's host end,
/// and the agent would no longer recognise the links it made.
struct InterfaceKeyFile: Sendable {
    let path: String
    private let files: LocalFileSystem

    init(directory: String, files: LocalFileSystem) {
        path = (directory as NSString).appendingPathComponent("interface-key")
        self.files = files
    }

    /// The recorded key, or a new one recorded now (mode 0600). A file that exists but holds no key is an error,
    /// not a reason to make a new key.
    func loadOrCreate() throws -> ContainerNaming {
        if let data = files.contents(of: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let naming = ContainerNaming(hex: text) else {
                throw NetleaseError(
                    .storage,
                    "\(path) does not hold a key (32 hex digits); restore it from a backup of this host, "
                        + "or remove it only after detaching every container this agent attached"
                )
            }
            return naming
        }
        let naming = ContainerNaming.random()
        try files.writeAtomically(Data((naming.hex + "\n").utf8), to: path, mode: 0o600)
        return naming
    }
}
