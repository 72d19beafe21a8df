import NetleaseCore

/// A change pushed to a watching connection, one `EVENT` line each. Events carry whole records, so applying one is
/// idempotent and a watcher that reconnects simply takes a new snapshot.
///
/// ```
/// EVENT kind=host <HOST fields>            ; a host joined, changed its underlay, or was declared lost
/// EVENT kind=host-removed name=NAME
/// EVENT kind=network <NETWORK fields>      ; a network was created
/// EVENT kind=network-deleted name=NAME
/// EVENT kind=keepalive                     ; sent every 20 s, so a watcher notices a dead coordinator
/// ```
public enum Event: Sendable, Equatable {
    case host(HostRecord)
    case hostRemoved(String)
    case network(NetworkSpec)
    case networkDeleted(String)
    case keepalive

    public static let tag = "EVENT"

    public var line: Line {
        var f = Fields()
        switch self {
        case .host(let host):
            f.append("kind", "host")
            for (k, v) in WireCodec.fields(host: host).pairs { f.append(k, v) }
        case .hostRemoved(let name):
            f.append("kind", "host-removed")
            f.append("name", name)
        case .network(let spec):
            f.append("kind", "network")
            for (k, v) in WireCodec.fields(network: spec).pairs { f.append(k, v) }
        case .networkDeleted(let name):
            f.append("kind", "network-deleted")
            f.append("name", name)
        case .keepalive:
            f.append("kind", "keepalive")
        }
        return Line(Event.tag, f)
    }

    public var rendered: String { LineFormat.render(line) + "\n" }

    public init(line text: Substring) throws {
        let parsed = try LineFormat.parse(text, maxBytes: WireLimits.maxReplyLineBytes)
        guard parsed.verb == Event.tag else { throw NetleaseError.badRequest("not an EVENT line") }
        var f = parsed.fields
        let kind = try f.require("kind")
        f["kind"] = nil
        switch kind {
        case "host": self = .host(try WireCodec.host(from: f))
        case "host-removed": self = .hostRemoved(try f.requireNonEmpty("name"))
        case "network": self = .network(try WireCodec.networkSpec(from: f, requireAll: true))
        case "network-deleted": self = .networkDeleted(try f.requireNonEmpty("name"))
        case "keepalive": self = .keepalive
        default: throw NetleaseError.badRequest("unknown event kind '\(kind)'")
        }
    }
}
