import Foundation
import YishiKafka

/// Consumer-group lag from the group's committed offsets and the partitions' high watermarks.
///
/// Caveat (Tansu 0.6.0): after a multi-record batch its ListOffsets reports the high watermark as
/// the batch's base offset + 1, so lag computed here can read low (never high); a negative
/// difference is shown as 0. On Apache Kafka the figures are exact.
public struct LagProbe {
    public let hub: Hub

    public init(hub: Hub) { self.hub = hub }

    public static let caveat = "lag = high watermark − committed offset; Tansu 0.6.0 reports high watermarks low after batched writes, so these figures can under-report (never over-report)"

    public struct PartitionLag: Encodable, Equatable, Sendable {
        public var partition: Int32
        /// Nil when the group has committed nothing for this partition.
        public var committed: Int64?
        public var low: Int64
        public var high: Int64
        /// `high − committed` (or `high − low` with no commit), never below 0.
        public var lag: Int64
        public init(partition: Int32, committed: Int64?, low: Int64, high: Int64, lag: Int64) {
            self.partition = partition; self.committed = committed; self.low = low; self.high = high; self.lag = lag
        }
    }

    public struct Row: Encodable, Equatable, Sendable {
        public var group: String
        public var topic: String
        public var partitions: [PartitionLag]
        public init(group: String, topic: String, partitions: [PartitionLag]) { self.group = group; self.topic = topic; self.partitions = partitions }
        public var lag: Int64 { partitions.reduce(0) { $0 + $1.lag } }
        public var committedPartitions: Int { partitions.filter { $0.committed != nil }.count }
        enum Keys: String, CodingKey { case group, topic, partitions, lag, committedPartitions }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(group, forKey: .group); try c.encode(topic, forKey: .topic); try c.encode(partitions, forKey: .partitions)
            try c.encode(lag, forKey: .lag); try c.encode(committedPartitions, forKey: .committedPartitions)
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
        var wanted: [TopicPartition] = []
        for name in topics {
            let count: Int32
            do { count = try hub.partitions(name) } catch OperationsError.notFound { continue }
            for p in 0..<count where only?.contains(p) ?? true { wanted.append(TopicPartition(hub.topic(name), p)) }
        }
        guard !wanted.isEmpty else { return [] }
        let consumer = try KafkaConsumer(config: hub.kafka(), groupId: group)
        defer { try? consumer.close() }
        var committed: [TopicPartition: Int64] = [:]
        do {
            for entry in try consumer.committed(wanted, timeout: hub.timeout) where entry.offset >= 0 {
                committed[entry.topicPartition] = entry.offset
            }
        } catch {
            throw OperationsError.unreachable("the broker did not give group \(group)'s committed offsets within \(hub.timeout): \(error)")
        }
        var rows: [String: [PartitionLag]] = [:]
        for tp in wanted {
            let (low, high): (Int64, Int64)
            do { (low, high) = try consumer.watermarks(tp, timeout: hub.timeout) } catch {
                throw OperationsError.unreachable("the broker did not give the watermarks of \(tp) within \(hub.timeout): \(error)")
            }
            let done = committed[tp]
            rows[tp.topic, default: []].append(PartitionLag(partition: tp.partition, committed: done, low: low, high: high,
                                                            lag: max(0, high - (done ?? low))))
        }
        return topics.map(hub.topic).compactMap { t in rows[t].map { Row(group: group, topic: t, partitions: $0) } }
    }
}
