import Foundation

/// Seeded randomness for tests (SplitMix64): the same seed gives the same sequence on every platform, so a failure
/// found with random input can be replayed.
///
/// `init(test:)` takes the seed from NETLEASE_TEST_SEED when it is set, and draws one otherwise; either way it
/// prints the seed and how to replay it before the first number is drawn, so the log of a failed or hung run has it.
public struct ReplayableRandom: RandomNumberGenerator, Sendable {
    /// The variable that fixes the seed of every `init(test:)` generator.
    public static let seedVariable = "NETLEASE_TEST_SEED"

    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    /// A generator for the test named `test`, seeded from NETLEASE_TEST_SEED or at random; the seed is printed.
    public init(test: String) {
        let fixed = ProcessInfo.processInfo.environment[Self.seedVariable].flatMap { UInt64($0) }
        let seed = fixed ?? UInt64.random(in: 0...UInt64.max)
        print("\(test): random seed \(seed) (replay: \(Self.seedVariable)=\(seed))")
        self.init(seed: seed)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
