import Foundation
import Synchronization

/// Counters, gauges and histograms with labels, rendered in the Prometheus text exposition
/// format 0.0.4 (`# HELP`, `# TYPE`, one sample per line, label values escaped, histograms as
/// cumulative `_bucket{le=…}` with `+Inf`, `_sum` and `_count`).
///
/// Families are created once by name (`counter`, `gauge`, `histogram` return the existing
/// family when asked again with the same type and labels, so several services in one process
/// can share a registry). Every method may be called from any thread.
public final class MetricsRegistry: Sendable {
    private let families = Mutex<[MetricFamily]>([])
    private let collectors = Mutex<[@Sendable () -> Void]>([])

    public init() {}

    /// A counter family: `name` must end in `_total` (Prometheus naming conventions).
    public func counter(_ name: String, _ help: String, labels: [String] = []) -> MetricFamily {
        family(name, help, .counter, labels, buckets: [])
    }

    /// A gauge family.
    public func gauge(_ name: String, _ help: String, labels: [String] = []) -> MetricFamily {
        family(name, help, .gauge, labels, buckets: [])
    }

    /// A histogram family with upper bucket bounds `buckets` (ascending; `+Inf` is added).
    public func histogram(_ name: String, _ help: String, labels: [String] = [], buckets: [Double]) -> MetricFamily {
        family(name, help, .histogram, labels, buckets: buckets.sorted())
    }

    /// Runs `collect` before every rendering (to refresh gauges read from elsewhere).
    public func onCollect(_ collect: @escaping @Sendable () -> Void) {
        collectors.withLock { $0.append(collect) }
    }

    private func family(_ name: String, _ help: String, _ type: MetricFamily.Kind, _ labels: [String], buckets: [Double]) -> MetricFamily {
        families.withLock { all in
            if let existing = all.first(where: { $0.name == name }) {
                precondition(existing.kind == type && existing.labelNames == labels,
                             "metric \(name) registered twice with different types or labels")
                return existing
            }
            let family = MetricFamily(name: name, help: help, kind: type, labelNames: labels, buckets: buckets)
            all.append(family)
            return family
        }
    }

    /// The whole exposition, `text/plain; version=0.0.4`.
    public func render() -> String {
        for collect in collectors.withLock({ $0 }) { collect() }
        var out = ""
        for family in families.withLock({ $0 }) { family.render(into: &out) }
        return out
    }

    /// The Content-Type of `render()`'s text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// One metric family: a name, its help, type and label names, and a sample (or histogram) per
/// combination of label values.
public final class MetricFamily: Sendable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }
    public let name: String
    public let help: String
    public let kind: Kind
    public let labelNames: [String]
    public let buckets: [Double]

    struct Series: Sendable {
        var value = 0.0
        var counts: [UInt64] = []  // per bucket, not cumulative
        var sum = 0.0
        var count: UInt64 = 0
    }

    private let series = Mutex<[[String]: Series]>([:])

    init(name: String, help: String, kind: Kind, labelNames: [String], buckets: [Double]) {
        self.name = name
        self.help = help
        self.kind = kind
        self.labelNames = labelNames
        self.buckets = buckets
        if labelNames.isEmpty { series.withLock { $0[[]] = Series(counts: [UInt64](repeating: 0, count: buckets.count)) } }
    }

    private func check(_ values: [String]) {
        precondition(values.count == labelNames.count, "metric \(name) takes labels \(labelNames), got \(values.count) values")
    }

    /// Adds `amount` (≥ 0 for counters) to the series with these label values.
    public func inc(_ labels: String..., by amount: Double = 1) { inc(labels: labels, by: amount) }

    public func inc(labels: [String], by amount: Double = 1) {
        check(labels)
        precondition(kind != .histogram && (kind == .gauge || amount >= 0), "\(name): a counter only goes up")
        series.withLock { $0[labels, default: Series()].value += amount }
    }

    /// Sets a gauge.
    public func set(_ value: Double, _ labels: String...) { set(value, labels: labels) }

    public func set(_ value: Double, labels: [String]) {
        check(labels)
        precondition(kind == .gauge, "\(name): only gauges are set")
        series.withLock { $0[labels, default: Series()].value = value }
    }

    /// Replaces every series of a gauge whose labels start with `prefix` by `values` (e.g. the
    /// consumer lag of the partitions a member owns now).
    public func replace(prefix: [String], with values: [[String]: Double]) {
        precondition(kind == .gauge, "\(name): only gauges are replaced")
        series.withLock { all in
            all = all.filter { !$0.key.starts(with: prefix) }
            for (labels, value) in values { check(labels); all[labels] = Series(value: value) }
        }
    }

    /// Records one observation in a histogram.
    public func observe(_ value: Double, _ labels: String...) { observe(value, labels: labels) }

    public func observe(_ value: Double, labels: [String]) {
        check(labels)
        precondition(kind == .histogram, "\(name): only histograms observe")
        series.withLock { all in
            var s = all[labels] ?? Series(counts: [UInt64](repeating: 0, count: buckets.count))
            if let i = buckets.firstIndex(where: { value <= $0 }) { s.counts[i] += 1 }
            s.sum += value
            s.count += 1
            all[labels] = s
        }
    }

    /// The value of a counter or gauge series (tests, tools); 0 when never touched.
    public func value(_ labels: String...) -> Double { series.withLock { $0[labels]?.value ?? 0 } }

    /// Count and sum of a histogram series.
    public func observations(_ labels: String...) -> (count: UInt64, sum: Double) {
        series.withLock { ($0[labels]?.count ?? 0, $0[labels]?.sum ?? 0) }
    }

    func render(into out: inout String) {
        out += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
        let snapshot = series.withLock { $0 }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        for (values, s) in snapshot {
            let pairs = zip(labelNames, values).map { "\($0)=\"\(Self.escapeLabel($1))\"" }
            switch kind {
            case .counter, .gauge:
                out += name + Self.braces(pairs) + " " + Self.format(s.value) + "\n"
            case .histogram:
                var cumulative: UInt64 = 0
                for (i, bound) in buckets.enumerated() {
                    cumulative += s.counts[i]
                    out += name + "_bucket" + Self.braces(pairs + ["le=\"\(Self.format(bound))\""]) + " \(cumulative)\n"
                }
                out += name + "_bucket" + Self.braces(pairs + ["le=\"+Inf\""]) + " \(s.count)\n"
                out += name + "_sum" + Self.braces(pairs) + " " + Self.format(s.sum) + "\n"
                out += name + "_count" + Self.braces(pairs) + " \(s.count)\n"
            }
        }
    }

    private static func braces(_ pairs: [String]) -> String { pairs.isEmpty ? "" : "{" + pairs.joined(separator: ",") + "}" }

    /// Label values escape backslash, double quote and line feed (exposition format 0.0.4).
    static func escapeLabel(_ value: String) -> String {
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// HELP text escapes backslash and line feed only.
    static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// A sample value as Go's ParseFloat reads it: `+Inf`, `-Inf`, `NaN`, whole numbers without `.0`.
    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
