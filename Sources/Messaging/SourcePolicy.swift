/// Which producers (`ce_source`) may write which topic. A pattern is an exact source, or a path
/// ending in `/*` that admits the path itself and anything below it (`/frontdesk/*` admits
/// `/frontdesk/hz-xihu-01`, not `/frontdeskx`). `{agency}` in a topic pattern matches one topic
/// segment and is substituted into its source patterns, so `events.tax` only admits the tax adapter.
public struct SourcePolicy: Sendable {
    public struct Rule: Sendable {
        public var topic: String
        public var sources: [String]
        public init(topic: String, sources: [String]) { self.topic = topic; self.sources = sources }
    }

    public var rules: [Rule]
    public init(rules: [Rule]) { self.rules = rules }

    /// The hub's policy (docs/message-catalogue.md, "Who may write where").
    public static let standard = SourcePolicy(rules: [
        Rule(topic: "applications", sources: ["/frontdesk/*", "/portal/*", "/yishi/orchestrator/*"]),
        Rule(topic: "commands.{agency}", sources: ["/yishi/orchestrator/*"]),
        Rule(topic: "dept.{agency}.requests", sources: ["/yishi/adapters/{agency}"]),
        Rule(topic: "dept.{agency}.replies", sources: ["/dept/{agency}"]),
        Rule(topic: "events.{agency}", sources: ["/yishi/adapters/{agency}"]),
        Rule(topic: "saga-state", sources: ["/yishi/orchestrator/*"]),
        Rule(topic: "saga-events", sources: ["/yishi/orchestrator/*"]),
        Rule(topic: "licences", sources: ["/yishi/orchestrator/*"]),
        Rule(topic: "progress", sources: ["/yishi/orchestrator/*"]),
        Rule(topic: "audit-heads", sources: ["/yishi/orchestrator/*"]),
        Rule(topic: "ops", sources: ["/yishi/ctl/*"]),
        Rule(topic: "ops-replies", sources: ["/yishi/orchestrator/*"]),
        Rule(topic: "ops-audit", sources: ["/yishi/ctl/*"]),
    ])

    /// The allowed source patterns for `topic` (without prefix), nil when no rule covers it.
    public func expected(forTopic topic: String) -> [String]? {
        let segments = topic.split(separator: ".", omittingEmptySubsequences: false)
        for rule in rules {
            let pattern = rule.topic.split(separator: ".", omittingEmptySubsequences: false)
            guard pattern.count == segments.count else { continue }
            var agency: Substring?
            let matches = zip(pattern, segments).allSatisfy { p, s in
                if p == "{agency}" { agency = s; return !s.isEmpty }
                return p == s
            }
            if matches {
                guard let agency else { return rule.sources }
                return rule.sources.map { $0.replacingOccurrences(of: "{agency}", with: String(agency)) }
            }
        }
        return nil
    }

    public func check(source: String, topic: String) throws(SourceError) {
        guard let expected = expected(forTopic: topic) else { throw SourceError(topic: topic, source: source, expected: []) }
        let ok = expected.contains { pattern in
            guard pattern.hasSuffix("/*") else { return source == pattern }
            let base = pattern.dropLast(2)
            return source == base || source.hasPrefix(base + "/")
        }
        if !ok { throw SourceError(topic: topic, source: source, expected: expected) }
    }
}

public struct SourceError: Error, Sendable, Equatable, CustomStringConvertible {
    public let topic: String
    public let source: String
    /// Empty when no rule covers the topic.
    public let expected: [String]
    public var description: String {
        expected.isEmpty
            ? "no source rule covers topic '\(topic)' (ce_source '\(source)')"
            : "ce_source '\(source)' may not write topic '\(topic)'; expected \(expected.joined(separator: " or "))"
    }
}
