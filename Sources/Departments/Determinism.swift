import Foundation

/// Stable pseudo-randomness: the same (seed, request id, purpose) always gives the same
/// number, on every platform and every run (Swift's `Hasher` is randomly seeded per process,
/// so it is never used here).
public enum StableRandom {
    /// FNV-1a 64 over the UTF-8 bytes, finished with the SplitMix64 mixer.
    public static func hash(_ text: String, seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    /// A uniform number in [0, 1).
    public static func uniform(seed: UInt64, _ parts: String...) -> Double {
        Double(hash(parts.joined(separator: "\u{1F}"), seed: seed) >> 11) / 9_007_199_254_740_992.0
    }
}

/// A latency distribution in working minutes: triangular (min, mode, max), which is what
/// department staff give when asked "how long does it usually take, at best, at worst".
public struct LatencyDistribution: Codable, Sendable, Equatable {
    public var min: Double
    public var mode: Double
    public var max: Double

    public init(min: Double, mode: Double, max: Double) {
        precondition(min <= mode && mode <= max, "latency must satisfy min <= mode <= max")
        self.min = min; self.mode = mode; self.max = max
    }

    /// Inverse CDF of the triangular distribution at `u` ∈ [0, 1), rounded to whole minutes.
    public func sample(_ u: Double) -> Int {
        let span = max - min
        guard span > 0 else { return Int(min.rounded()) }
        let cut = (mode - min) / span
        let x = u < cut ? min + (u * span * (mode - min)).squareRoot()
                        : max - ((1 - u) * span * (max - mode)).squareRoot()
        return Int(x.rounded())
    }

    public func scaled(by f: Double) -> LatencyDistribution {
        LatencyDistribution(min: min * f, mode: mode * f, max: max * f)
    }
}

/// How a simulated department behaves: how long it takes and how it fails.
public struct DepartmentProfile: Codable, Sendable, Equatable {
    public enum Preset: String, Codable, Sendable, CaseIterable {
        case `default`
        case noFaults = "no-faults"
        case flaky
    }

    /// Seed of every sampled decision; replays with the same seed reproduce latencies and faults.
    public var seed: UInt64
    /// Latency per native action code; actions not listed use `fallbackLatency`.
    public var latency: [String: LatencyDistribution]
    public var fallbackLatency: LatencyDistribution
    /// Probability that a delivery is answered with a retryable fault (nothing happens).
    public var transientFaultRate: Double
    /// Probability that the first delivery of a request is processed but its reply is lost.
    public var lostReplyRate: Double
    /// Probability that a request is rejected by manual review (a business rejection).
    public var manualRejectionRate: Double

    public init(seed: UInt64, latency: [String: LatencyDistribution], fallbackLatency: LatencyDistribution,
                transientFaultRate: Double, lostReplyRate: Double, manualRejectionRate: Double) {
        self.seed = seed; self.latency = latency; self.fallbackLatency = fallbackLatency
        self.transientFaultRate = transientFaultRate; self.lostReplyRate = lostReplyRate
        self.manualRejectionRate = manualRejectionRate
    }

    /// The built-in profiles. `default`: typical latencies, 2% transient faults.
    /// `no-faults`: typical latencies, never fails by chance. `flaky`: latencies three times
    /// longer at worst, 15% transient faults, 3% lost replies, 2% manual rejections.
    public static func preset(_ preset: Preset, latency: [String: LatencyDistribution], seed: UInt64 = 2026) -> DepartmentProfile {
        let fallback = LatencyDistribution(min: 5, mode: 15, max: 60)
        switch preset {
        case .default:
            return DepartmentProfile(seed: seed, latency: latency, fallbackLatency: fallback,
                                     transientFaultRate: 0.02, lostReplyRate: 0, manualRejectionRate: 0)
        case .noFaults:
            return DepartmentProfile(seed: seed, latency: latency, fallbackLatency: fallback,
                                     transientFaultRate: 0, lostReplyRate: 0, manualRejectionRate: 0)
        case .flaky:
            let stretched = latency.mapValues { LatencyDistribution(min: $0.min, mode: $0.mode * 1.5, max: $0.max * 3) }
            return DepartmentProfile(seed: seed, latency: stretched, fallbackLatency: fallback.scaled(by: 2),
                                     transientFaultRate: 0.15, lostReplyRate: 0.03, manualRejectionRate: 0.02)
        }
    }

    public func latency(for action: String) -> LatencyDistribution { latency[action] ?? fallbackLatency }
}

/// Arithmetic on amounts read from messages (capital, contributions, counts): overflow is an
/// answer (nil), never a trap that would stop the department process on every redelivery.
public enum CheckedArithmetic {
    /// The sum of `values`, or nil when it does not fit in `Int`.
    public static func sum(_ values: [Int]) -> Int? {
        overflowIndex(values) == nil ? values.reduce(0, &+) : nil
    }

    /// The index of the value whose addition makes the running sum of `values` overflow `Int`; nil when none does.
    public static func overflowIndex(_ values: [Int]) -> Int? {
        var total = 0
        for (i, v) in values.enumerated() {
            let (next, overflow) = total.addingReportingOverflow(v)
            if overflow { return i }
            total = next
        }
        return nil
    }
}
