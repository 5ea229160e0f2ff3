import Foundation
import Synchronization
import YishiKafka

/// Consumer-group lag: the data records each group has still to consume, counted by reading.
///
/// A topic written in transactions holds a commit (or abort) marker after each transaction's
/// records; the marker takes an offset but is no record a consumer ever receives. So
/// `high watermark − committed offset` reads 1 (or more) on an idle partition. Here the
/// partitions are read (read_committed, as the hub's consumers read them) from the lowest
/// committed offset to their end, and each group's lag is the number of records delivered at or
/// after its committed offset: control records and aborted records are not counted. Reading to
/// the end-of-partition report also sidesteps Tansu 0.6.0, whose ListOffsets can report a high
/// watermark below the real end after batched writes.
///
/// At most `countLimit` records are read per partition; beyond that the figure is
/// `records counted + (high watermark − next offset)`, an estimate marked `exact: false`.
public struct LagProbe {
    public let hub: Hub
    /// Records read per partition before the rest is estimated from the high watermark.
    public var countLimit: Int

    public init(hub: Hub, countLimit: Int = 20_000) { self.hub = hub; self.countLimit = countLimit }

    public static let caveat = "lag = committed records not yet consumed, counted by reading each partition from the group's committed "
        + "offset to its end (read_committed): transaction markers and aborted records are not counted; a figure marked ~ is an "
        + "estimate (more than the counting limit waiting); Tansu 0.6.0 delivers aborted records to read_committed consumers, so there they count"

    public struct PartitionLag: Encodable, Equatable, Sendable {
        public var partition: Int32
        /// Nil when the group has committed nothing for this partition.
        public var committed: Int64?
        public var low: Int64
        /// The high watermark as the broker reports it (it counts transaction markers).
        public var high: Int64
        /// Records not yet consumed: delivered records at or after `committed` (or `low` with no commit).
        public var lag: Int64
        /// False when more than the counting limit waited and the rest was estimated from `high`.
        public var exact: Bool
        /// Timestamp (ms since the epoch, the record's create time) of the oldest record waiting; nil when none.
        public var oldestWaitingMs: Int64?
        public init(partition: Int32, committed: Int64?, low: Int64, high: Int64, lag: Int64, exact: Bool = true, oldestWaitingMs: Int64? = nil) {
            self.partition = partition; self.committed = committed; self.low = low; self.high = high; self.lag = lag; self.exact = exact
            self.oldestWaitingMs = oldestWaitingMs
        }
    }

    public struct Row: Encodable, Equatable, Sendable {
        public var group: String
        public var topic: String
        public var partitions: [PartitionLag]
        public init(group: String, topic: String, partitions: [PartitionLag]) { self.group = group; self.topic = topic; self.partitions = partitions }
        public var lag: Int64 { partitions.reduce(0) { $0 + $1.lag } }
        public var exact: Bool { partitions.allSatisfy(\.exact) }
        public var committedPartitions: Int { partitions.filter { $0.committed != nil }.count }
        /// The oldest waiting record's timestamp over the partitions (ms since the epoch).
        public var oldestWaitingMs: Int64? { partitions.compactMap(\.oldestWaitingMs).min() }
        enum Keys: String, CodingKey { case group, topic, partitions, lag, exact, committedPartitions }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(group, forKey: .group); try c.encode(topic, forKey: .topic); try c.encode(partitions, forKey: .partitions)
            try c.encode(lag, forKey: .lag); try c.encode(exact, forKey: .exact); try c.encode(committedPartitions, forKey: .committedPartitions)
        }
    }

    public func adapterGroup(_ agency: String) -> String { HubGroups.adapter(prefix: hub.prefix, agency: agency) }

    /// The groups and topics the hub itself defines: the orchestrator on its inputs, each adapter
    /// on its commands and its department's replies, each department gateway on its requests.
    public func knownGroups(agencies: [String]) -> [(group: String, topics: [String])] {
        [(hub.orchestratorGroup, ["applications", "ops"] + agencies.map { "events.\($0)" })]
            + agencies.map { (adapterGroup($0), ["commands.\($0)", "dept.\($0).replies"]) }
            + agencies.map { (HubGroups.department(prefix: hub.prefix, agency: $0), ["dept.\($0).requests"]) }
    }

    /// Lag of `group` on hub topics `topics` (names without prefix), only `partitions` if given.
    public func lag(group: String, topics: [String], partitions only: [Int32]? = nil) throws -> [Row] {
        try lag([(group, topics)], partitions: only)
    }

    /// Committed offsets of `group` on `partitions` (full topic names); absent when none.
    /// - Throws: `OperationsError.unreachable` when the broker does not answer in `hub.timeout`.
    public func committed(group: String, _ partitions: [TopicPartition]) throws -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let consumer = try KafkaConsumer(config: hub.kafka(), groupId: group)
        defer { try? consumer.close() }
        var committed: [TopicPartition: Int64] = [:]
        do {
            for entry in try consumer.committed(partitions, timeout: hub.remaining) where entry.offset >= 0 {
                committed[entry.topicPartition] = entry.offset
            }
        } catch {
            throw OperationsError.unreachable("the broker did not give group \(group)'s committed offsets within \(hub.timeout): \(error)")
        }
        return committed
    }

    /// Lag of several groups at once (each on its hub topics, names without prefix): every
    /// partition is read once, from the lowest offset any group needs.
    /// - Throws: `OperationsError.unreachable` when the broker does not answer in `hub.timeout`.
    public func lag(_ groups: [(group: String, topics: [String])], partitions only: [Int32]? = nil) throws -> [Row] {
        var wantedByGroup: [(String, [TopicPartition])] = []
        for (group, topics) in groups {
            var wanted: [TopicPartition] = []
            for name in topics {
                let count: Int32
                do { count = try hub.partitions(name) } catch OperationsError.notFound { continue }
                for p in 0..<count where only?.contains(p) ?? true { wanted.append(TopicPartition(hub.topic(name), p)) }
            }
            wantedByGroup.append((group, wanted))
        }
        let commits = try wantedByGroup.map { try committed(group: $0.0, $0.1) }
        let all = Array(Set(wantedByGroup.flatMap(\.1))).sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        guard !all.isEmpty else { return [] }
        let reader = try KafkaConsumer(config: hub.kafka([
            "enable.partition.eof": "true", "fetch.wait.max.ms": "10", "queued.max.messages.kbytes": "65536",
        ]), groupId: "yishi-ctl-lag")
        defer { try? reader.close() }
        var marks: [TopicPartition: (low: Int64, high: Int64)] = [:]
        var start: [TopicPartition: Int64] = [:]
        for tp in all {
            do { marks[tp] = try reader.watermarks(tp, timeout: hub.remaining) } catch {
                throw OperationsError.unreachable("the broker did not give the watermarks of \(tp) within \(hub.timeout): \(error)")
            }
            let froms = commits.compactMap { $0[tp] } + (commits.contains { $0[tp] == nil } ? [marks[tp]!.low] : [])
            start[tp] = max(marks[tp]!.low, froms.min() ?? marks[tp]!.low)
        }
        let counted = try count(all, from: start, with: reader)
        var rows: [Row] = []
        for ((group, wanted), committed) in zip(wantedByGroup, commits) {
            var byTopic: [String: [PartitionLag]] = [:]
            for tp in wanted {
                let (low, high) = marks[tp]!
                let done = committed[tp]
                let from = max(done ?? low, low)
                let seen = counted[tp] ?? Counted(offsets: [], times: [], next: from, complete: true)
                let first = lowerBound(seen.offsets, from)
                var lag = Int64(seen.offsets.count - first)
                if !seen.complete { lag += max(0, high - max(seen.next, from)) }
                byTopic[tp.topic, default: []].append(PartitionLag(partition: tp.partition, committed: done, low: low, high: high,
                                                                   lag: lag, exact: seen.complete,
                                                                   oldestWaitingMs: first < seen.times.count ? seen.times[first] : nil))
            }
            for t in Set(wanted.map(\.topic)).sorted(by: { a, b in
                (wanted.firstIndex { $0.topic == a } ?? 0) < (wanted.firstIndex { $0.topic == b } ?? 0)
            }) {
                rows.append(Row(group: group, topic: t, partitions: byTopic[t]!.sorted { $0.partition < $1.partition }))
            }
        }
        return rows
    }

    struct Counted { var offsets: [Int64]; var times: [Int64?]; var next: Int64; var complete: Bool }

    private func lowerBound(_ sorted: [Int64], _ value: Int64) -> Int {
        var lo = 0, hi = sorted.count
        while lo < hi { let mid = (lo + hi) / 2; if sorted[mid] < value { lo = mid + 1 } else { hi = mid } }
        return lo
    }

    /// The offsets of the records delivered on each partition from `start` to its end (at most
    /// `countLimit` per partition; `complete` false when the limit stopped the count).
    private func count(_ partitions: [TopicPartition], from start: [TopicPartition: Int64],
                       with consumer: KafkaConsumer) throws -> [TopicPartition: Counted] {
        let ended = Mutex<Set<TopicPartition>>([])
        consumer.onPartitionEnd { end in ended.withLock { _ = $0.insert(end.topicPartition) } }
        var out: [TopicPartition: Counted] = [:]
        for tp in partitions { out[tp] = Counted(offsets: [], times: [], next: start[tp]!, complete: true) }
        try consumer.assign(partitions.map { TopicPartitionOffset($0.topic, $0.partition, start[$0]!) })
        var open = Set(partitions)
        let deadline = hub.deadline ?? ContinuousClock.now + hub.timeout
        while !open.isEmpty {
            open.subtract(ended.withLock { $0 })
            guard !open.isEmpty else { break }
            guard ContinuousClock.now < deadline else {
                throw OperationsError.unreachable("reading \(open.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }.prefix(3).map(\.description).joined(separator: ", ")) to count lag did not reach the end within \(hub.timeout)")
            }
            for m in try consumer.poll(maxMessages: 5000, timeout: .milliseconds(5)) {
                let tp = m.topicPartition
                guard open.contains(tp) else { continue }
                out[tp]!.offsets.append(m.offset)
                out[tp]!.times.append(m.timestampMs)
                out[tp]!.next = m.offset + 1
                if out[tp]!.offsets.count >= countLimit {
                    out[tp]!.complete = false
                    open.remove(tp)
                    try? consumer.pause([tp])
                }
            }
        }
        return out
    }
}
