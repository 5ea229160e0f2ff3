import Foundation
import Orchestrator

/// What the orchestrator loop did during a bench phase (`OrchestratorService.recentBatches`),
/// and what it did while the slowest step-latency samples waited: printed as progress lines.
enum LoopBreakdown {
    /// Percentiles (p50, p99, max) of each phase of the loop turns that committed something, in ms.
    static func summary(_ label: String, _ turns: [BatchTiming]) -> String {
        let busy = turns.filter { $0.committedAt != nil }
        guard !busy.isEmpty else { return "\(label): no transactions" }
        func stats(_ name: String, _ value: (BatchTiming) -> Double, scale: Double = 1000) -> String {
            let v = busy.map(value).sorted()
            func p(_ q: Double) -> Double { v[min(v.count - 1, Int((Double(v.count) * q).rounded(.up)) - 1)] * scale }
            return String(format: "%@ %.1f/%.1f/%.1f", name, p(0.5), p(0.99), v.last! * scale)
        }
        let wall = (turns.last!.end - turns.first!.start).seconds
        return "\(label): \(busy.count) transactions in \(String(format: "%.1f", wall)) s (p50/p99/max, ms or count): "
            + [stats("turn", \.total), stats("poll_wait", \.pollWait), stats("gather", \.gather), stats("process", \.process),
               stats("timers", \.timers), stats("encode", \.encode), stats("build", \.build), stats("commit", \.commit),
               stats("produce", \.produce), stats("send_offsets", \.sendOffsets), stats("commit_call", \.commitCall),
               stats("install", \.install), stats("snapshot", \.snapshot), stats("oldest_input", \.oldestInput),
               stats("inputs", { Double($0.inputs) }, scale: 1), stats("records", { Double($0.records) }, scale: 1),
               stats("fired", { Double($0.fired) }, scale: 1)].joined(separator: ", ")
    }

    /// For the `count` slowest samples: the turns that overlapped the interval from the answer to
    /// the command read, with their breakdown.
    static func slowest(_ samples: [(answered: ContinuousClock.Instant, ms: Double)], turns: [BatchTiming], count: Int = 8,
                        origin: ContinuousClock.Instant) -> [String] {
        samples.sorted { $0.ms > $1.ms }.enumerated().filter { $0.offset % max(samples.count / 100 / count, 1) == 0 }.map(\.element).prefix(count).map { sample in
            let end = sample.answered + .milliseconds(sample.ms)
            let overlapping = turns.filter { $0.end > sample.answered && $0.start < end && $0.committedAt != nil }
            let described = overlapping.map { t in
                String(format: "[+%.0f ms: turn %.0f, wait %.0f, gather %.0f, process %.0f, encode %.0f, commit %.0f (produce %.0f, offsets %.0f, commit %.0f), install %.0f, snapshot %.0f, oldest input %.0f; %d in, %d fired, %d out]",
                       (t.start - sample.answered).seconds * 1000, t.total * 1000, t.pollWait * 1000, t.gather * 1000,
                       t.process * 1000, t.encode * 1000, t.commit * 1000, t.produce * 1000, t.sendOffsets * 1000,
                       t.commitCall * 1000, t.install * 1000, t.snapshot * 1000, t.oldestInput * 1000, t.inputs, t.fired, t.records)
            }
            return String(format: "slow sample %.0f ms at +%.2f s: ", sample.ms, (sample.answered - origin).seconds) + described.joined(separator: " ")
        }
    }

    /// p50/p99/max of the two parts of the step-latency samples (`StepLatency.split`).
    static func split(_ parts: [(toCommand: Double, toRead: Double)]) -> String {
        guard !parts.isEmpty else { return "orchestrator: no step-latency split" }
        func p(_ v: [Double]) -> String {
            let v = v.sorted()
            func q(_ x: Double) -> Double { v[min(v.count - 1, Int((Double(v.count) * x).rounded(.up)) - 1)] }
            return String(format: "%.0f/%.0f/%.0f", q(0.5), q(0.99), v.last!)
        }
        return "orchestrator: step latency split (p50/p99/max ms): answer → command created " + p(parts.map(\.toCommand))
            + ", command created → read " + p(parts.map(\.toRead))
    }
}
