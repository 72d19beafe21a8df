import NetleaseWire

extension RequestHandler {
    /// The verb a line names (verbs are case-insensitive), for counting a line that did not parse; nil when it
    /// names none. Only lines that failed to parse get here.
    static func verb(in line: Substring) -> Request.Verb? {
        let word = line.drop { $0 == " " || $0 == "\t" }.prefix { $0 != " " && $0 != "\t" }
        return Request.Verb(rawValue: word.uppercased())
    }
}

extension RequestHandler.Barrier {
    /// The verb that made this barrier, for the request metrics.
    var verb: Request.Verb {
        switch self {
        case .networkCreate: .networkCreate
        case .networkList: .networkList
        case .networkShow: .networkShow
        case .networkDelete: .networkDelete
        case .join: .join
        case .hostList: .hostList
        case .hostRemove: .hostRemove
        case .reserve: .reserve
        case .unreserve: .unreserve
        case .reportConflict: .reportConflict
        case .leaseList: .leaseList
        case .reconcile: .reconcile
        case .handOver: .acquire
        case .watch: .watch
        case .backup: .backup
        case .stats: .stats
        case .authenticateHost: .auth
        case .hostCredentialSet: .hostCredentialSet
        case .hostCredentialRevoke: .hostCredentialRevoke
        case .hostCredentialList: .hostCredentialList
        }
    }
}

extension Result {
    /// The error of a failure; nil on success.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
