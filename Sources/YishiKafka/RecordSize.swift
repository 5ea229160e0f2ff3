import Foundation

/// The largest record a producer accepts, and the size librdkafka counts for a record.
///
/// librdkafka refuses a record at produce time with `MSG_SIZE_TOO_LARGE` when its worst-case
/// wire size (MessageV2 overhead + key + value + serialized headers, see `rd_kafka_msg_new0` and
/// `rd_kafka_msg_max_wire_size`) exceeds the producer's `message.max.bytes` (default 1,000,000
/// bytes). Inside a transaction that error would abort the batch and, as the same input is read
/// again, abort it forever: every hub service asks this limit *before* it enqueues, and turns an
/// oversized record into a dead letter or a refusal (see `Messaging.OutboundGuard`).
public struct RecordSizeLimit: Sendable, Equatable, CustomStringConvertible {
    /// librdkafka's default `message.max.bytes` (bytes).
    public static let librdkafkaDefault = 1_000_000
    /// MessageV2 worst-case per-record overhead (bytes): length, attributes, timestamp delta,
    /// offset delta, key length, value length and header count as maximal varints.
    public static let recordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5

    /// The producer's `message.max.bytes` (bytes).
    public let maxBytes: Int

    public init(maxBytes: Int) { self.maxBytes = maxBytes }

    /// The limit of a producer made with `config`: its `message.max.bytes`, else librdkafka's default.
    public init(config: KafkaConfig) {
        maxBytes = config["message.max.bytes"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? Self.librdkafkaDefault
    }

    /// Worst-case wire size of `record` as librdkafka counts it against `message.max.bytes` (bytes).
    public static func wireSize(_ record: ProducerRecord) -> Int {
        recordOverhead + (record.key?.count ?? 0) + (record.value?.count ?? 0) + headersSize(record.headers)
    }

    /// Serialized size of `headers` in a MessageV2 record (bytes): per header a zigzag varint
    /// name length, the name, a zigzag varint value length (-1 for a null value) and the value.
    public static func headersSize(_ headers: [KafkaHeader]) -> Int {
        headers.reduce(0) { sum, h in
            let name = h.name.utf8.count, value = h.value?.count ?? -1
            return sum + varintSize(name) + name + varintSize(value) + max(0, value)
        }
    }

    /// Bytes of a zigzag-encoded varint of `n`.
    static func varintSize(_ n: Int) -> Int {
        var zigzag = UInt64(bitPattern: Int64((n << 1) ^ (n >> 63)))
        var bytes = 1
        while zigzag >= 0x80 { zigzag >>= 7; bytes += 1 }
        return bytes
    }

    /// True when librdkafka would accept `record`.
    public func fits(_ record: ProducerRecord) -> Bool { Self.wireSize(record) <= maxBytes }

    /// Throws `RecordTooLarge` (naming topic, key and size) when librdkafka would refuse `record`.
    public func check(_ record: ProducerRecord) throws(RecordTooLarge) {
        let size = Self.wireSize(record)
        guard size <= maxBytes else {
            throw RecordTooLarge(topic: record.topic, key: record.key.map { String(decoding: $0.prefix(200), as: UTF8.self) },
                                 size: size, limit: maxBytes)
        }
    }

    public var description: String { "message.max.bytes \(maxBytes)" }
}

/// A record the producer would refuse: where it was going, its key, its size and the limit (bytes).
public struct RecordTooLarge: Error, Sendable, Equatable, CustomStringConvertible {
    public let topic: String
    /// The record's key as text (at most its first 200 bytes), nil for a keyless record.
    public let key: String?
    public let size: Int
    public let limit: Int

    public init(topic: String, key: String?, size: Int, limit: Int) {
        self.topic = topic; self.key = key; self.size = size; self.limit = limit
    }

    public var description: String {
        "the record for \(topic) key '\(key ?? "")' would be \(size) bytes, above the producer's message.max.bytes \(limit)"
    }
}
