import Foundation
import NetleaseTesting

// Runs operation sequences against a real coordinator (CoordinatorHarness on loopback, injected ManualLeaseClock,
// background reclaimer parked so that every reclaim is an explicit step), judges each reply by the model, checks
// the observable invariants and the full listings after every step, and shrinks failing sequences.

/// Runs async work from synchronous test code. The test thread blocks; the coordinator runs on its own threads.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = BlockingResult<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = Result<T, Error>.success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

final class BlockingResult<T: Sendable>: @unchecked Sendable {
    // @unchecked: written once by the task before `signal`, read after `wait`.
    var result: Result<T, Error>?
}

/// What went wrong at which step of a sequence.
struct ModelRunFailure {
    var step: Int
    var message: String
}

final class ModelRunner {
    static let connectionNames = ["admin0", "admin1", "admin2", "reader", "anonymous"]
    static let roles: [ModelConnection.Role] = [.admin, .admin, .admin, .reader, .anonymous]

    let clock = ManualLeaseClock()
    let directory: URL
    let model: ProtocolModel
    private var harness: CoordinatorHarness?
    private var connections: [ModelConnection?] = Array(repeating: nil, count: 5)
    /// The highest epoch each host name has shown in a listing: epochs only grow.
    private var listedEpochs: [String: Int64] = [:]
    /// Human-readable record of what was sent and answered, one entry per step.
    private(set) var transcript: [String] = []
    private(set) var requests = 0
    /// How often each verb got each answer (`ACQUIRE OK`, `ACQUIRE ERR conflict`, …): what a run exercised.
    private(set) var outcomes: [String: Int] = [:]

    init(dataRoot: URL) {
        directory = dataRoot.appendingPathComponent("netlease-model-\(UUID().uuidString)")
        model = ProtocolModel(now: clock.now())
    }

    /// Runs `ops` on a fresh coordinator; the first failure, or nil. Always stops the coordinator and removes its
    /// files.
    func run(_ ops: [ModelOp]) -> ModelRunFailure? {
        defer { stop(removeFiles: true) }
        do {
            try start()
            try checkState()
        } catch {
            return ModelRunFailure(step: -1, message: "cannot start: \(error)")
        }
        for (index, op) in ops.enumerated() {
            do {
                try execute(op, step: index + 1)
                try checkState()
            } catch {
                transcript.append("      !! \(error)")
                return ModelRunFailure(step: index, message: "\(error)")
            }
        }
        return nil
    }

    // MARK: the coordinator

    private func start() throws {
        let (clock, directory) = (self.clock, self.directory)
        harness = try runBlocking {
            // The reclaimer runs once at start (finding nothing to do) and then waits a year: reclaims happen
            // when the sequence says so, through `store.reclaim()`.
            try await CoordinatorHarness.start(
                clock: clock,
                reclaimInterval: .seconds(31_536_000),
                directory: directory
            )
        }
    }

    private func stop(removeFiles: Bool) {
        connections = Array(repeating: nil, count: 5)
        guard let harness else { return }
        self.harness = nil
        _ = try? runBlocking { await harness.stop(removeFiles: removeFiles) }
        if removeFiles { try? FileManager.default.removeItem(at: directory) }
    }

    private func connection(_ index: Int) throws -> ModelConnection {
        if let connection = connections[index] { return connection }
        let connection = try ModelConnection(port: harness!.endpoint.port, role: Self.roles[index])
        connections[index] = connection
        return connection
    }

    // MARK: steps

    private func execute(_ op: ModelOp, step: Int) throws {
        let number = String(step).leftPadded(to: 3, with: " ")
        switch op {
        case .request(let index, let template):
            let request = resolve(template)
            let expectation = model.expect(request, role: Self.roles[index])
            transcript.append("\(number)  [\(Self.connectionNames[index])] \(request.line)")
            let reply = try connection(index).exchange([request.line])[0]
            requests += 1
            transcript.append("       -> \(Self.summary(reply))")
            try judge(reply, expectation, request)
        case .pipeline(let index, let templates):
            // Resolved against the state before the first: the later ones may meet stale epochs or moved
            // addresses, which is part of the point. Each reply is judged after the earlier ones were applied.
            let batch = templates.map(resolve)
            transcript.append("\(number)  [\(Self.connectionNames[index])] pipelined:")
            for request in batch { transcript.append("         \(request.line)") }
            let replies = try connection(index).exchange(batch.map(\.line))
            requests += batch.count
            for (request, reply) in zip(batch, replies) {
                transcript.append("       -> \(Self.summary(reply))")
                try judge(reply, model.expect(request, role: Self.roles[index]), request)
            }
        case .concurrent(let batches):
            let resolved = batches.map { (connection: $0.connection, requests: $0.requests.map(resolve)) }
            transcript.append("\(number)  at once:")
            for batch in resolved {
                transcript.append("         [\(Self.connectionNames[batch.connection])] pipelined:")
                for request in batch.requests { transcript.append("           \(request.line)") }
            }
            for batch in resolved { try connection(batch.connection).send(batch.requests.map(\.line)) }
            let replies = try resolved.map { try connection($0.connection).replies(to: $0.requests.map(\.line)) }
            for (batch, batchReplies) in zip(resolved, replies) {
                requests += batch.requests.count
                for (request, reply) in zip(batch.requests, batchReplies) {
                    transcript.append("       -> [\(Self.connectionNames[batch.connection])] \(Self.summary(reply))")
                    try judge(reply, model.expect(request, role: .admin), request)
                }
            }
        case .advance(let seconds):
            transcript.append("\(number)  clock +\(seconds) s, then one reclaim pass")
            clock.advance(seconds: Double(seconds))
            model.advance(milliseconds: Int64(seconds) * 1000)
            model.noteTouched()
            let store = harness!.store
            _ = try runBlocking { try await store.reclaim() }
        case .restart:
            transcript.append("\(number)  restart: stop the coordinator, start it again on the same data directory")
            stop(removeFiles: false)
            try start()
            model.restarted()
        case .garbage(let kind):
            let line = ModelPools.garbage[kind]
            let shown = line.count > 100 ? "\(line.prefix(60))… (\(line.utf8.count) bytes)" : line
            transcript.append("\(number)  [fresh admin] \(shown)")
            let connection = try ModelConnection(port: harness!.endpoint.port, role: .admin)
            let reply = try connection.exchangeRaw(Array((line + "\n").utf8))
            requests += 1
            transcript.append("       -> \(Self.summary(reply))")
            guard reply.code == "bad-request" else {
                throw ModelFailure("a malformed line was answered with \(reply.head.raw), not bad-request")
            }
            if line.utf8.count > 8192, !connection.isClosedByPeer() {
                throw ModelFailure("the connection stayed open after an oversized line")
            }
        }
    }

    private func judge(_ reply: WireReply, _ expectation: Expectation, _ request: ModelRequest) throws {
        outcomes["\(request.verb) \(reply.isOK ? "OK" : "ERR \(reply.code)")", default: 0] += 1
        if reply.isOK {
            guard expectation.maySucceed, let accept = expectation.accept else {
                let codes = expectation.codes.sorted().joined(separator: "|")
                throw ModelFailure("\(request.verb): expected ERR \(codes), got \(reply.head.raw.prefix(300))")
            }
            try accept(reply)
            model.noteTouched()
            return
        }
        let matching = expectation.refusals.filter { $0.code == reply.code }
        guard !matching.isEmpty else {
            let expected = (expectation.maySucceed ? ["OK"] : []) + expectation.codes.sorted().map { "ERR \($0)" }
            throw ModelFailure(
                "\(request.verb): expected \(expected.joined(separator: " or ")), got \(reply.head.raw.prefix(300))"
            )
        }
        if reply.code == "bad-request" {
            // Identifier refusals name the field (§2 "Identifiers").
            let fields = matching.map(\.field)
            if fields.allSatisfy({ $0 != nil }),
                !fields.contains(where: { reply.head.message.contains("field '\($0!)'") })
            {
                throw ModelFailure(
                    "\(request.verb): the refusal does not name the field "
                        + "(\(Set(fields.compactMap { $0 }).sorted())): \(reply.head.raw.prefix(300))"
                )
            }
        }
    }

    private func resolve(_ template: ModelRequestTemplate) -> ModelRequest {
        ModelRequest(verb: template.verb, fields: template.fields.map { ($0.key, resolve($0.value)) })
    }

    private func resolve(_ value: ModelValue) -> String {
        switch value {
        case .text(let text):
            return text
        case .address(let network, let choice):
            let canonical = WireText.canonical(network)
            let subnet = model.subnet(of: canonical) ?? MSubnet(base: 10 << 24 | 9 << 16, prefix: 28)
            switch choice {
            case .fixed(let text):
                return text
            case .record(let n):
                let addresses = model.addresses(in: canonical)
                if addresses.isEmpty { return IPText.text(subnet.base + UInt32(n % 16)) }
                return IPText.text(addresses[n % addresses.count])
            case .offset(let n):
                return IPText.text(subnet.base &+ UInt32(n))
            case .host(let n):
                return IPText.text(subnet.base + 1 + UInt32(n % subnet.hosts.count))
            case .recordIn(let state, let n):
                let addresses = model.addresses(in: canonical, state: state)
                if addresses.isEmpty { return resolve(.address(network: network, .record(n))) }
                return IPText.text(addresses[n % addresses.count])
            }
        case .epoch(let host, let choice):
            let canonical = WireText.canonical(host)
            let current = model.currentEpoch(of: canonical) ?? 1
            switch choice {
            case .current: return String(current)
            case .past(let n):
                let earlier = model.pastEpochs(of: canonical).filter { $0 != current }
                return String(earlier.isEmpty ? current - 1 : earlier[n % earlier.count])
            case .bogus: return "987654"
            case .notANumber: return "1x"
            }
        }
    }

    private static func summary(_ reply: WireReply) -> String {
        let head = reply.head.raw.count > 400 ? reply.head.raw.prefix(400) + "…" : reply.head.raw[...]
        guard !reply.records.isEmpty else { return String(head) }
        return "\(head)" + reply.records.prefix(4).map { "\n            \($0.raw.prefix(300))" }.joined()
            + (reply.records.count > 4 ? "\n            … \(reply.records.count - 4) more" : "")
    }

    // MARK: after every step

    /// The observable invariants of DESIGN.md, then every listing and the STATS counts against the model.
    private func checkState() throws {
        let replies = try connection(0).exchange([
            "LEASE-LIST", "LEASE-LIST state=cooldown", "HOST-LIST", "NETWORK-LIST", "STATS",
        ])
        requests += replies.count
        for reply in replies where !reply.isOK { throw ModelFailure("a listing failed: \(reply.head.raw)") }
        let (leases, cooling, hosts, networks) = (replies[0], replies[1], replies[2], replies[3])

        var subnets: [String: (MSubnet, Set<UInt32>)] = [:]
        for record in networks.records {
            guard let name = record["name"], let subnet = record["subnet"].flatMap(MSubnet.init) else {
                throw ModelFailure("unreadable NETWORK record: \(record)")
            }
            var excluded = Set<UInt32>()
            for item in (record["exclude"] ?? "").split(separator: ",") {
                if let range = IdentifierRules.range(String(item)) { excluded.formUnion(range) }
            }
            subnets[name] = (subnet, excluded)
        }
        var addresses = Set<String>()
        var owners = Set<String>()
        for record in leases.records + cooling.records {
            guard let network = record["network"], let (subnet, excluded) = subnets[network],
                let address = ProtocolModel.leaseAddress(record["address"], prefix: subnet.prefix)
            else {
                throw ModelFailure("a LEASE record of no listed network, or with a bad address: \(record)")
            }
            // Never handed out: network, broadcast and excluded addresses have no record.
            guard subnet.isHost(address), !excluded.contains(address) else {
                throw ModelFailure("invariant 4 (never handed out): \(record)")
            }
            // Unique: at most one record per address.
            guard addresses.insert("\(network) \(address)").inserted else {
                throw ModelFailure("invariant 1 (unique): two records for \(record["address"]!) in \(network)")
            }
            if record["state"] == "active", let owner = record["owner"], !owner.isEmpty {
                guard owners.insert("\(network) \(owner)").inserted else {
                    throw ModelFailure("one active lease per owner: '\(owner)' holds two in \(network)")
                }
            }
        }
        if let record = leases.records.first(where: { $0["state"] == "cooldown" })
            ?? cooling.records.first(where: { $0["state"] != "cooldown" })
        {
            throw ModelFailure("LEASE-LIST mixes cooldown records and others: \(record)")
        }
        var epochs = Set<Int64>()
        for record in hosts.records {
            guard let name = record["name"], let epoch = record["epoch"].flatMap(IdentifierRules.number) else {
                throw ModelFailure("unreadable HOST record: \(record)")
            }
            guard epochs.insert(epoch).inserted else { throw ModelFailure("two hosts have epoch \(epoch)") }
            if let before = listedEpochs[name], epoch < before {
                throw ModelFailure("the epoch of \(name) went back from \(before) to \(epoch)")
            }
            listedEpochs[name] = epoch
        }

        try ProtocolModel.sameList(
            "LEASE-LIST",
            leases.records.map(ProtocolModel.leaseText(observed:)),
            model.listing()
        )
        try ProtocolModel.sameList(
            "LEASE-LIST state=cooldown",
            cooling.records.map(ProtocolModel.leaseText(observed:)),
            model.listing(state: "cooldown")
        )
        try model.compareHosts(hosts)
        try model.compareNetworks(networks)
        try model.compareStats(replies[4])
    }
}

// MARK: - shrinking

enum ModelShrinker {
    /// Delta debugging: drop chunks of operations, then single ones, replaying each candidate on a fresh
    /// coordinator and keeping it when it still fails; pipelines are also tried as plain requests and with fewer
    /// requests, and requests without each optional field. Returns the smallest failing sequence found within
    /// `budget` replays.
    static func shrink(_ ops: [ModelOp], dataRoot: URL, budget: Int) -> (ops: [ModelOp], replays: Int) {
        var replays = 0
        func fails(_ candidate: [ModelOp]) -> Bool {
            guard replays < budget else { return false }
            replays += 1
            let failure = ModelRunner(dataRoot: dataRoot).run(candidate)
            if ProcessInfo.processInfo.environment["MODEL_TRACE"] == "1" {
                let outcome = failure.map { "fails: \($0.message.prefix(100))" } ?? "passes"
                say("shrink: \(candidate.count) operations: \(outcome)")
            }
            return failure != nil
        }
        var current = ops
        while true {
            current = removeOperations(current, fails)
            let (flattened, pipelinesChanged) = simplifyPipelines(current, fails)
            let (simpler, fieldsChanged) = dropOptionalFields(flattened, fails)
            current = simpler
            if !(pipelinesChanged || fieldsChanged) || replays >= budget { break }
        }
        return (current, replays)
    }

    /// Removes chunks of operations, halving the chunk size down to single operations, while the rest still fails.
    private static func removeOperations(_ ops: [ModelOp], _ fails: ([ModelOp]) -> Bool) -> [ModelOp] {
        var current = ops
        var granularity = 2
        while current.count >= 2 {
            let chunk = (current.count + granularity - 1) / granularity
            var reduced = false
            var start = 0
            while start < current.count {
                var candidate = current
                candidate.removeSubrange(start..<min(start + chunk, current.count))
                if fails(candidate) {
                    current = candidate
                    granularity = max(granularity - 1, 2)
                    reduced = true
                    break
                }
                start += chunk
            }
            if !reduced {
                if chunk == 1 { break }
                granularity = min(current.count, granularity * 2)
            }
        }
        return current
    }

    /// Concurrent pipelines one after the other; each pipeline as separate requests, else without each of its
    /// requests in turn. Whether anything changed.
    private static func simplifyPipelines(_ ops: [ModelOp], _ fails: ([ModelOp]) -> Bool) -> ([ModelOp], Bool) {
        var current = ops
        var changed = false
        var index = 0
        while index < current.count {
            if case .concurrent(let batches) = current[index] {
                var candidate = current
                candidate.replaceSubrange(index...index, with: batches.map { .pipeline(connection: $0.0, $0.1) })
                if fails(candidate) {
                    current = candidate
                    changed = true
                    continue
                }
            }
            guard case .pipeline(let connection, let requests) = current[index] else {
                index += 1
                continue
            }
            var candidate = current
            candidate.replaceSubrange(index...index, with: requests.map { .request(connection: connection, $0) })
            if fails(candidate) {
                current = candidate
                changed = true
                continue
            }
            var remaining = requests
            var position = 0
            while position < remaining.count && remaining.count > 1 {
                var fewer = remaining
                fewer.remove(at: position)
                var candidate = current
                candidate[index] = .pipeline(connection: connection, fewer)
                if fails(candidate) {
                    current = candidate
                    remaining = fewer
                    changed = true
                } else {
                    position += 1
                }
            }
            index += 1
        }
        return (current, changed)
    }

    /// Each request without each of its optional fields in turn. Whether anything changed.
    private static func dropOptionalFields(_ ops: [ModelOp], _ fails: ([ModelOp]) -> Bool) -> ([ModelOp], Bool) {
        var current = ops
        var changed = false
        for index in current.indices {
            guard case .request(let connection, var template) = current[index] else { continue }
            let required = Set(ProtocolModel.verbs[template.verb]?.required ?? [])
            var position = 0
            while position < template.fields.count {
                guard !required.contains(template.fields[position].key) else {
                    position += 1
                    continue
                }
                var fewer = template
                fewer.fields.remove(at: position)
                var candidate = current
                candidate[index] = .request(connection: connection, fewer)
                if fails(candidate) {
                    current = candidate
                    template = fewer
                    changed = true
                } else {
                    position += 1
                }
            }
        }
        return (current, changed)
    }
}
