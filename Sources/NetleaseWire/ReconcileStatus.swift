import NetleaseCore

/// The `status` field of a RECONCILE reply: which of the four verdicts the coordinator reached about a lease an
/// agent says it uses. The raw values are the wire spelling (docs/PROTOCOL.md, RECONCILE).
public enum ReconcileStatus: String, Sendable, Equatable, CaseIterable {
    case held
    case adopted
    case taken
    case moved
}

extension ReconcileOutcome {
    /// The verdict without the lease that comes with it.
    public var status: ReconcileStatus {
        switch self {
        case .held: .held
        case .adopted: .adopted
        case .taken: .taken
        case .moved: .moved
        }
    }

    /// The lease the reply carries: the held or adopted lease, the record that holds the address, or the owner's
    /// current lease.
    public var lease: Lease {
        switch self {
        case .held(let lease), .adopted(let lease), .taken(by: let lease), .moved(to: let lease): lease
        }
    }

    /// Pairs a verdict with the lease the reply carried.
    public init(status: ReconcileStatus, lease: Lease) {
        switch status {
        case .held: self = .held(lease)
        case .adopted: self = .adopted(lease)
        case .taken: self = .taken(by: lease)
        case .moved: self = .moved(to: lease)
        }
    }
}

extension WireCodec {
    /// A RECONCILE reply: the LEASE fields, then `status`.
    public static func fields(reconcile outcome: ReconcileOutcome) -> Fields {
        var f = fields(lease: outcome.lease)
        f.append("status", outcome.status.rawValue)
        return f
    }

    /// Reads a RECONCILE reply. A missing or unknown `status` is an error rather than a guess: an agent that
    /// misread the verdict would either miss a disagreement or report one that is not there.
    public static func reconcileOutcome(from f: Fields) throws -> ReconcileOutcome {
        let text = try f.require("status")
        guard let status = ReconcileStatus(rawValue: text) else {
            throw NetleaseError.badRequest(
                "unknown reconcile status '\(text)'; expected one of "
                    + ReconcileStatus.allCases.map(\.rawValue).joined(separator: ", ")
            )
        }
        return ReconcileOutcome(status: status, lease: try lease(from: f))
    }
}
