import Foundation
import XCTest

/// The model-checked protocol test (DESIGN.md "Testing layers" 3): random sequences of every state-changing verb,
/// listings, clock advances with reclaims, restarts, pipelines and hostile identifiers against a real coordinator,
/// each reply judged by `ProtocolModel`, every invariant and every listing checked after every step. A failing
/// sequence is shrunk and printed as protocol lines with its seed.
///
/// Environment (scripts/model-check.sh sets these for the long form):
///   MODEL_SEED       first sequence's seed (default: random; printed)
///   MODEL_SEQUENCES  number of sequences (default 30)
///   MODEL_LENGTH     operations per sequence (default 60)
///   MODEL_OPS        total operations instead of MODEL_SEQUENCES (sequences = MODEL_OPS / MODEL_LENGTH)
///   MODEL_SHRINK     replay budget for shrinking (default 400)
///   MODEL_TRACE=1    print every sequence as sent and answered
///   MODEL_DATA_DIR   where coordinators keep their files (default /dev/shm when writable, else the temp dir)
final class ProtocolModelTests: XCTestCase {
    func testRandomSequencesAgreeWithTheModel() throws {
        let configuration = ModelCheckConfiguration(environment: ProcessInfo.processInfo.environment)
        let report = ModelChecker(configuration).run()
        say(report.summary)
        if let failure = report.failure { XCTFail(failure) }
    }
}

struct ModelCheckConfiguration {
    var seed: UInt64
    var sequences: Int
    var length: Int
    var shrinkBudget: Int
    var dataRoot: URL
    var trace: Bool

    init(environment: [String: String]) {
        seed = environment["MODEL_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(UInt32.max))
        length = max(4, environment["MODEL_LENGTH"].flatMap { Int($0) } ?? 60)
        if let total = environment["MODEL_OPS"].flatMap({ Int($0) }) {
            sequences = max(1, (total + length - 1) / length)
        } else {
            sequences = max(1, environment["MODEL_SEQUENCES"].flatMap { Int($0) } ?? 30)
        }
        trace = environment["MODEL_TRACE"] == "1"
        shrinkBudget = environment["MODEL_SHRINK"].flatMap { Int($0) } ?? 400
        if let path = environment["MODEL_DATA_DIR"] {
            dataRoot = URL(fileURLWithPath: path)
        } else if FileManager.default.isWritableFile(atPath: "/dev/shm") {
            // Commits are fsynced; on a RAM disk that costs nothing, and durability across a graceful restart
            // does not depend on it.
            dataRoot = URL(fileURLWithPath: "/dev/shm")
        } else {
            dataRoot = FileManager.default.temporaryDirectory
        }
    }
}

final class ModelChecker {
    struct Report {
        var summary: String
        var failure: String?
    }

    let configuration: ModelCheckConfiguration

    init(_ configuration: ModelCheckConfiguration) { self.configuration = configuration }

    func run() -> Report {
        let c = configuration
        say(
            "protocol model check: seed=\(c.seed) sequences=\(c.sequences) length=\(c.length) "
                + "data=\(c.dataRoot.path)"
        )
        let started = Date()
        var operations = 0
        var requests = 0
        var outcomes: [String: Int] = [:]
        var lastProgress = started
        for index in 0..<c.sequences {
            let seed = c.seed &+ UInt64(index)
            var generator = ModelGenerator(seed: seed)
            let ops = generator.sequence(length: c.length)
            let runner = ModelRunner(dataRoot: c.dataRoot)
            if let failure = runner.run(ops) {
                return Report(
                    summary: "protocol model check: FAILED in sequence \(index + 1) (seed \(seed))",
                    failure: report(failure, ops: ops, seed: seed, firstTranscript: runner.transcript)
                )
            }
            operations += ops.count
            requests += runner.requests
            for (key, count) in runner.outcomes { outcomes[key, default: 0] += count }
            if c.trace { say("sequence \(index + 1) (seed \(seed)):\n" + runner.transcript.joined(separator: "\n")) }
            if Date().timeIntervalSince(lastProgress) > 30 {
                lastProgress = Date()
                let seconds = lastProgress.timeIntervalSince(started)
                say(
                    "protocol model check: \(index + 1)/\(c.sequences) sequences, \(operations) operations in "
                        + "\(Int(seconds)) s (\(Int(Double(operations) / seconds)) operations/s)"
                )
            }
        }
        let seconds = Date().timeIntervalSince(started)
        var summary =
            "protocol model check: passed \(c.sequences) sequences, \(operations) operations "
            + "(\(requests) requests with the checks) in \(String(format: "%.1f", seconds)) s: "
            + "\(Int(Double(operations) / max(seconds, 0.001))) operations/s, "
            + "\(Int(Double(requests) / max(seconds, 0.001))) requests/s (seed \(c.seed))"
        summary +=
            "\n  answers: "
            + outcomes.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }
            .joined(separator: ", ")
        return Report(summary: summary, failure: nil)
    }

    private func report(_ failure: ModelRunFailure, ops: [ModelOp], seed: UInt64, firstTranscript: [String]) -> String {
        let c = configuration
        var text =
            "protocol model check FAILED: sequence seed \(seed) (reproduce with MODEL_SEED=\(seed) "
            + "MODEL_SEQUENCES=1 MODEL_LENGTH=\(c.length))\n"
        text += "failure at operation \(failure.step + 1) of \(ops.count): \(failure.message)\n"
        let failing = Array(ops.prefix(failure.step + 1))
        let (minimal, replays) = ModelShrinker.shrink(failing, dataRoot: c.dataRoot, budget: c.shrinkBudget)
        let replay = ModelRunner(dataRoot: c.dataRoot)
        if let again = replay.run(minimal) {
            text +=
                "minimal sequence: \(minimal.count) operations (shrunk from \(failing.count) in \(replays) "
                + "replays), as sent:\n"
            text += replay.transcript.joined(separator: "\n") + "\n"
            text += "minimal failure: \(again.message)"
        } else {
            text += "the shrunk sequence did not fail again; the original run:\n"
            text += firstTranscript.joined(separator: "\n")
        }
        return text
    }
}

/// Writes a line to standard output at once (print is buffered when the output is a pipe, as under swift test).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
