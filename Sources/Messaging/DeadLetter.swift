import Foundation
import YishiKafka

/// A record that could not be processed, as kept on the `dlq` topic: the original key, value
/// and headers byte for byte, plus `yishi.dlq.*` headers saying where it came from, why, and
/// when (in the spirit of Kafka Connect's `__connect.errors.*` and Spring's `kafka_dlt-original-*`).
///
/// A dead letter always fits the producer's `message.max.bytes`, so that writing it can never
/// fail the transaction it is part of. When the original plus the `yishi.dlq.*` headers would
/// not fit (a record near the limit), the copy is cut: first the value (its first bytes are
/// kept), then if need be the original headers, then the key, and `yishi.dlq.truncated` names
/// what was cut and `yishi.dlq.original.size` the original's size. The full original stays at
/// `yishi.dlq.original.topic/partition/offset` (as long as that topic's retention keeps it);
/// `yishi dlq replay` of a cut dead letter replays that original, never the cut copy.
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
        /// On a cut copy: what was cut to fit `message.max.bytes`, comma-separated (`value`, `headers`, `key`).
        public static let truncated = "yishi.dlq.truncated"
        /// On a cut copy: the original record's wire size (bytes).
        public static let originalSize = "yishi.dlq.original.size"
    }

    /// Longest `yishi.dlq.error.message` kept (bytes of UTF-8); longer reasons are cut with `…`.
    public static let maxErrorMessageBytes = 4096

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
    /// What was cut from this copy to fit `message.max.bytes` (`value`, `headers`, `key`); empty for a whole copy.
    public var truncated: [String]
    /// The original record's wire size (bytes), on a cut copy.
    public var originalSize: Int?

    /// The record to produce on `dlqTopic` (keyed by the original key) for `message`, cut to fit
    /// `limit` when it must be (see the type's documentation).
    public static func record(for message: KafkaMessage, group: String, error: MessageRejection, at: Date,
                              dlqTopic: String, limit: RecordSizeLimit = RecordSizeLimit(maxBytes: RecordSizeLimit.librdkafkaDefault)) -> ProducerRecord {
        var headers = dlqHeaders(for: message, group: group, error: error, at: at)
        var record = ProducerRecord(topic: dlqTopic, key: message.key, value: message.value, headers: message.headers + headers)
        guard !limit.fits(record) else { return record }
        // Too large: cut, keeping as much of the original as fits, and say what was cut.
        let originalSize = RecordSizeLimit.wireSize(ProducerRecord(topic: message.topic, key: message.key, value: message.value,
                                                                   headers: message.headers))
        var cut: [String] = ["value"]
        func marked(_ base: [KafkaHeader]) -> [KafkaHeader] {
            base + headers + [KafkaHeader(Header.truncated, cut.joined(separator: ",")), KafkaHeader(Header.originalSize, String(originalSize))]
        }
        func room(key: Data?, headers: [KafkaHeader]) -> Int {
            limit.maxBytes - RecordSizeLimit.wireSize(ProducerRecord(topic: dlqTopic, key: key, value: Data(), headers: headers))
        }
        var key = message.key
        var originalHeaders = message.headers
        if room(key: key, headers: marked(originalHeaders)) < 0 {
            cut.append("headers")
            originalHeaders = []
        }
        if room(key: key, headers: marked(originalHeaders)) < 0 {
            cut.append("key")
            key = key.map { Data($0.prefix(max(0, $0.count + room(key: $0, headers: marked(originalHeaders))))) }
        }
        if room(key: key, headers: marked(originalHeaders)) < 0 {
            // Even our own headers do not fit (an absurdly small limit): keep only where the original is.
            headers = headers.filter { [Header.originalTopic, Header.originalPartition, Header.originalOffset, Header.errorClass].contains($0.name) }
        }
        let keep = max(0, room(key: key, headers: marked(originalHeaders)))
        record = ProducerRecord(topic: dlqTopic, key: key, value: message.value.map { Data($0.prefix(keep)) }, headers: marked(originalHeaders))
        return record
    }

    private static func dlqHeaders(for message: KafkaMessage, group: String, error: MessageRejection, at: Date) -> [KafkaHeader] {
        var headers: [KafkaHeader] = []
        headers.append(KafkaHeader(Header.originalTopic, message.topic))
        headers.append(KafkaHeader(Header.originalPartition, String(message.partition)))
        headers.append(KafkaHeader(Header.originalOffset, String(message.offset)))
        if let ts = message.timestampMs { headers.append(KafkaHeader(Header.originalTimestamp, String(ts))) }
        headers.append(KafkaHeader(Header.consumerGroup, group))
        headers.append(KafkaHeader(Header.errorClass, error.errorClass.rawValue))
        headers.append(KafkaHeader(Header.errorMessage, Self.capped(error.message)))
        if let where_ = error.path ?? error.header { headers.append(KafkaHeader(Header.errorPath, where_)) }
        headers.append(KafkaHeader(Header.timestamp, RFC3339.format(at)))
        return headers
    }

    /// `text` cut to `maxErrorMessageBytes` of UTF-8 (on a character boundary), with `…` when cut.
    static func capped(_ text: String) -> String {
        guard text.utf8.count > maxErrorMessageBytes else { return text }
        var out = ""
        var bytes = 0
        for c in text {
            let n = String(c).utf8.count
            if bytes + n > maxErrorMessageBytes - 3 { break }
            out.append(c)
            bytes += n
        }
        return out + "…"
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
        truncated = h.string(Header.truncated).map { $0.split(separator: ",").map(String.init) } ?? []
        originalSize = h.string(Header.originalSize).flatMap { Int($0) }
    }

    /// Where the full original is: the record this dead letter copies.
    public var origin: TopicPartitionOffset { TopicPartitionOffset(originalTopic, originalPartition, originalOffset) }

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
