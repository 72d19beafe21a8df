import NetleaseCore

/// A change the chaos admin asks for; while its reply is outstanding its outcome is unknown.
enum AdminChange: Hashable, Sendable {
    case reserve(IPv4Address)
    case conflict(IPv4Address)
    case networkCreated(String)
    case networkDeleted(String)
    case hostRemoved(String, owner: String)
}

/// Every acknowledgement the chaos clients received, and what follows from them: which owner holds which address
/// right now, what must be reserved, quarantined, created or gone. Checked live for duplicates (an address
/// acknowledged to a second owner while the first still holds it) and for handed-out reserved or quarantined
/// addresses; `snapshot()` gives what must hold after a restart.
actor AcknowledgementLog {
    private(set) var held: [String: IPv4Address] = [:]
    /// Who holds each address according to the acknowledgements.
    private var holders: [IPv4Address: String] = [:]
    private(set) var released: Set<String> = []
    /// Releases sent but not acknowledged: the coordinator may or may not have applied them.
    private(set) var releasing: Set<String> = []
    private(set) var epochs: [String: Int64] = [:]
    private(set) var acknowledged = 0
    private var reserved: Set<IPv4Address> = []
    private var quarantined: Set<IPv4Address> = []
    private var networks: Set<String> = []
    private var deletedNetworks: Set<String> = []
    private var removedHosts: Set<String> = []
    /// Admin changes whose reply never came: either outcome is correct.
    private var uncertain: Set<AdminChange> = []
    private var networkCounter = 0
    private var duplicates = 0
    private var unexpectedErrors = 0
    private var problems: [String] = []
    private var waiter: (target: Int, continuation: CheckedContinuation<Bool, Never>)?
    private var workersRunning = false

    struct Snapshot {
        var held: [String: IPv4Address]
        var released: Set<String>
        var releasing: Set<String>
        var epochs: [String: Int64]
        var reserved: Set<IPv4Address>
        var quarantined: Set<IPv4Address>
        var networks: Set<String>
        var deletedNetworks: Set<String>
        var removedHosts: Set<String>
    }

    /// What must hold now. Whatever an uncertain change touched is left out of the expectations.
    func snapshot() -> Snapshot {
        var snapshot = Snapshot(
            held: held,
            released: released,
            releasing: releasing,
            epochs: epochs,
            reserved: reserved,
            quarantined: quarantined,
            networks: networks,
            deletedNetworks: deletedNetworks,
            removedHosts: removedHosts
        )
        for change in uncertain {
            switch change {
            case .reserve(let address): snapshot.reserved.remove(address)
            case .conflict(let address): snapshot.quarantined.remove(address)
            case .networkCreated(let name): snapshot.deletedNetworks.remove(name)
            case .networkDeleted(let name): snapshot.networks.remove(name)
            case .hostRemoved(let host, _):
                snapshot.epochs[host] = nil
            }
        }
        return snapshot
    }

    struct LiveFindings {
        var duplicates: Int
        var unexpectedErrors: Int
        var problems: [String]
    }

    /// The findings made while the clients ran (cumulative), handing over their problem lines once.
    func liveFindings() -> LiveFindings {
        defer { problems = [] }
        return LiveFindings(duplicates: duplicates, unexpectedErrors: unexpectedErrors, problems: problems)
    }

    func epoch(of host: String) -> Int64? { epochs[host] }

    func joined(_ host: String, epoch: Int64) {
        epochs[host] = epoch
        count()
    }

    func acquired(_ owner: String, _ address: IPv4Address) {
        if let other = holders[address], other != owner {
            if releasing.contains(other) {
                // The reply to that release was lost, but the address moved on: the release was applied.
                releasing.remove(other)
                held[other] = nil
                released.insert(other)
            } else {
                duplicates += 1
                problem("\(address) acknowledged to \(owner) while \(other) holds it")
            }
        }
        if reserved.contains(address) { problem("reserved \(address) handed out to \(owner)") }
        if quarantined.contains(address) { problem("quarantined \(address) handed out to \(owner)") }
        if let previous = held[owner], previous != address {
            problem("\(owner) acknowledged \(previous), then \(address)")
        }
        held[owner] = address
        holders[address] = owner
        count()
    }

    func releaseSent(_ owner: String) { releasing.insert(owner) }

    func released(_ owner: String) {
        releasing.remove(owner)
        forget(owner)
        count()
    }

    private func forget(_ owner: String) {
        if let address = held.removeValue(forKey: owner), holders[address] == owner { holders[address] = nil }
        released.insert(owner)
    }

    func renewed() { count() }

    func pending(_ change: AdminChange) {
        uncertain.insert(change)
        // Removing a host releases its leases: until the reply comes, the owner may or may not hold its address.
        if case .hostRemoved(_, let owner) = change { releasing.insert(owner) }
    }

    /// The change was refused with an error a correct coordinator may give (e.g. the address is held).
    func settled(_ change: AdminChange) {
        uncertain.remove(change)
        if case .hostRemoved(_, let owner) = change { releasing.remove(owner) }
    }

    func acknowledged(_ change: AdminChange) {
        uncertain.remove(change)
        switch change {
        case .reserve(let address):
            if let holder = holders[address] {
                problem("reservation of \(address) acknowledged while \(holder) holds it")
            }
            reserved.insert(address)
        case .conflict(let address):
            if reserved.contains(address) {
                problem("conflict at \(address) acknowledged while it is reserved")
            } else {
                if let holder = holders[address] {
                    problem("conflict at \(address) acknowledged while \(holder) holds it")
                }
                quarantined.insert(address)
            }
        case .networkCreated(let name):
            networks.insert(name)
        case .networkDeleted(let name):
            networks.remove(name)
            deletedNetworks.insert(name)
        case .hostRemoved(let host, let owner):
            removedHosts.insert(host)
            epochs[host] = nil
            releasing.remove(owner)
            forget(owner)
        }
        count()
    }

    /// A network created earlier in the run, to delete; not one whose deletion may already have happened (its
    /// reply was lost to a kill).
    func someCreatedNetwork() -> String? {
        networks.sorted().first { !uncertain.contains(.networkDeleted($0)) }
    }

    /// A number never used before in this run: names, /24 subnets and underlay addresses of what the admin makes
    /// must not collide (subnets of a cluster's networks may not overlap; underlay addresses are per host).
    func nextNetwork() -> (name: String, third: Int) {
        networkCounter += 1
        return ("cn\(networkCounter)", networkCounter)
    }

    func unexpected(_ text: String) {
        unexpectedErrors += 1
        problem("unexpected error: \(text)")
    }

    private func problem(_ text: String) {
        if problems.count < 20 { problems.append(text) }
    }

    private func count() {
        acknowledged += 1
        if let waiter, acknowledged >= waiter.target {
            self.waiter = nil
            waiter.continuation.resume(returning: true)
        }
    }

    func startCycle() { workersRunning = true }

    /// Every client of the cycle has stopped: nobody will acknowledge anything more.
    func workersEnded() {
        workersRunning = false
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: false)
        }
    }

    private func timedOut(target: Int) {
        if let waiter, waiter.target == target {
            self.waiter = nil
            waiter.continuation.resume(returning: false)
        }
    }

    /// Returns true once `count` more acknowledgements arrived; false when the deadline passed first or every
    /// client stopped.
    func waitFor(more count: Int, deadline: Duration) async -> Bool {
        let target = acknowledged + count
        let timer = Task {
            try await Task.sleep(for: deadline)
            self.timedOut(target: target)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            if acknowledged >= target {
                continuation.resume(returning: true)
            } else if !workersRunning {
                continuation.resume(returning: false)
            } else {
                waiter = (target, continuation)
            }
        }
    }
}

/// A small seeded generator, so a failing run can be repeated with `--seed`.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
