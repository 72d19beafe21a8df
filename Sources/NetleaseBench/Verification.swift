import NetleaseCore

/// What the coordinator lists, checked against what it acknowledged to the bench.
struct Verification: Sendable, Encodable {
    var ok: Bool
    var acknowledgedHeld: Int
    var listed: Int
    var seconds: Double
    var problems: [String]

    /// Most problems a report lists; the rest are summed up as "…".
    static let maxProblems = 20

    init(ok: Bool, acknowledgedHeld: Int, listed: Int, seconds: Double, problems: [String]) {
        self.ok = ok
        self.acknowledgedHeld = acknowledgedHeld
        self.listed = listed
        self.seconds = seconds
        self.problems = problems
    }

    /// Checks a LEASE-LIST of the network (`leases`) against the acknowledged leases still held (`expected`, owner
    /// → address): every one is active with its address (else *missing* or *moved*), no address was acknowledged to
    /// two owners (*duplicate*), no address is listed twice, and no owner starting with `forbiddenPrefix` is still
    /// active (*leftover*: a lease whose release was acknowledged), except the `tolerated` ones, whose release
    /// failed. `seconds` stays 0 for the caller to fill in.
    init(expected: [String: UInt32], listed leases: [Lease], forbiddenPrefix: String?, tolerated: Set<String>) {
        var problems: [String] = []
        var byOwner: [String: UInt32] = [:]
        var addresses = Set<UInt32>()
        for lease in leases {
            if !addresses.insert(lease.address.value).inserted {
                problems.append("address \(lease.address) listed twice")
            }
            if lease.state == .active { byOwner[lease.owner] = lease.address.value }
        }
        var missing = 0
        var moved = 0
        var seen = Set<UInt32>()
        var duplicates = 0
        for (owner, address) in expected {
            if !seen.insert(address).inserted { duplicates += 1 }
            guard let listed = byOwner[owner] else {
                missing += 1
                continue
            }
            if listed != address { moved += 1 }
        }
        if missing > 0 { problems.append("\(missing) acknowledged lease(s) missing from LEASE-LIST") }
        if moved > 0 { problems.append("\(moved) acknowledged lease(s) listed with another address") }
        if duplicates > 0 { problems.append("\(duplicates) address(es) acknowledged to two owners") }
        if let forbiddenPrefix {
            let leftovers = byOwner.keys.count { $0.hasPrefix(forbiddenPrefix) && !tolerated.contains($0) }
            if leftovers > 0 { problems.append("\(leftovers) released lease(s) still active") }
        }
        if problems.count > Self.maxProblems { problems = Array(problems.prefix(Self.maxProblems)) + ["…"] }
        self.init(
            ok: problems.isEmpty,
            acknowledgedHeld: expected.count,
            listed: leases.count,
            seconds: 0,
            problems: problems
        )
    }
}
