import Foundation
import YishiKafka

/// A record that could not be processed, as kept on the `dlq` topic: the original key, value
/// and headers byte for byte, plus `yishi.dlq.*` headers saying where it came from, why, and
/// when (in the spirit of Kafka Connect's `__connect.errors.*` and Spring's `kafka_dlt-original-*`).
public struct DeadLetter: Sendable, Equatable {
    public enum Header {
        public static let prefix = "yishi.dlq."
        public static let originalTopic = "yishi.dlq.original.topic"
        public static let originalPartition = "yishi.dlq.original.partition"
        public static let originalOffset = "yishi.dlq.original.offset"
        /// The original record's timestamp (ms since the epoch), when the broker gave one.
        public static let originalTimestamp = "yishi.dlq.original.timestamp"
        public static let consumerGroup = "yishi.dlq.consumer.group"
        public static let errorClass = "yishi.dlq.error.class"
        public static let errorMessage = "yishi.dlq.error.message"
        /// The offending header name or JSON path, when there is one.
        public static let errorPath = "yishi.dlq.error.path"
        /// When the record was dead-lettered (RFC 3339).
        public static let timestamp = "yishi.dlq.timestamp"
        /// On a replayed record: the dead letter it came from (`topic[partition]@offset`).
        public static let replayed = "yishi.dlq.replayed"
        /// On a replayed record: the operator who replayed it.
        public static let replayedBy = "yishi.dlq.replayed.by"
    }

    public var originalTopic: String
    public var originalPartition: Int32
    public var originalOffset: Int64
    public var originalTimestampMs: Int64?
    public var consumerGroup: String
    /// Normally a `MessageRejection.Class` raw value; kept as text so unknown classes still list.
    public var errorClass: String
    public var errorMessage: String
    public var errorPath: String?
    public var failedAt: Date
    public var key: Data?
    public var value: Data?
    /// The original headers, without any `yishi.dlq.*` header.
    public var headers: [KafkaHeader]

    /// The record to produce on `dlqTopic` (keyed by the original key) for `message`.
    public static func record(for message: KafkaMessage, group: String, error: MessageRejection, at: Date,
                              dlqTopic: String) -> ProducerRecord {
        var headers = message.headers
        headers.append(KafkaHeader(Header.originalTopic, message.topic))
        headers.append(KafkaHeader(Header.originalPartition, String(message.partition)))
        headers.append(KafkaHeader(Header.originalOffset, String(message.offset)))
        if let ts = message.timestampMs { headers.append(KafkaHeader(Header.originalTimestamp, String(ts))) }
        headers.append(KafkaHeader(Header.consumerGroup, group))
        headers.append(KafkaHeader(Header.errorClass, error.errorClass.rawValue))
        headers.append(KafkaHeader(Header.errorMessage, error.message))
        if let where_ = error.path ?? error.header { headers.append(KafkaHeader(Header.errorPath, where_)) }
        headers.append(KafkaHeader(Header.timestamp, RFC3339.format(at)))
        return ProducerRecord(topic: dlqTopic, key: message.key, value: message.value, headers: headers)
    }

    /// Reads a record consumed from the DLQ back into its origin and reason.
    public init(_ message: KafkaMessage) throws(DeadLetterError) {
        let h = message.headers
        func required(_ name: String) throws(DeadLetterError) -> String {
            guard let v = h.string(name) else { throw DeadLetterError(offset: message.offset, message: "missing header '\(name)'") }
            return v
        }
        originalTopic = try required(Header.originalTopic)
        let partition = try required(Header.originalPartition), offset = try required(Header.originalOffset)
        guard let p = Int32(partition), let o = Int64(offset) else {
            throw DeadLetterError(offset: message.offset, message: "bad origin partition '\(partition)' or offset '\(offset)'")
        }
        originalPartition = p
        originalOffset = o
        originalTimestampMs = h.string(Header.originalTimestamp).flatMap { Int64($0) }
        consumerGroup = try required(Header.consumerGroup)
        errorClass = try required(Header.errorClass)
        errorMessage = try required(Header.errorMessage)
        errorPath = h.string(Header.errorPath)
        let at = try required(Header.timestamp)
        guard let date = RFC3339.parse(at) else { throw DeadLetterError(offset: message.offset, message: "bad \(Header.timestamp) '\(at)'") }
        failedAt = date
        key = message.key
        value = message.value
        headers = h.filter { !$0.name.hasPrefix(Header.prefix) }
    }

    /// The record that sends the original back to its topic: same key, value and headers, marked
    /// with `yishi.dlq.replayed`. The partitioner places it by key (the original partition as long
    /// as the partition count is unchanged).
    public func replayRecord(from dlq: TopicPartitionOffset) -> ProducerRecord {
        ProducerRecord(topic: originalTopic, key: key, value: value,
                       headers: headers + [KafkaHeader(Header.replayed, dlq.description)])
    }
}

public struct DeadLetterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Offset of the unreadable record on the DLQ.
    public let offset: Int64
    public let message: String
    public var description: String { "DLQ record at offset \(offset): \(message)" }
}
