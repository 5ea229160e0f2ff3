import CRdKafka
import Foundation

public struct KafkaHeader: Sendable, Equatable {
    public var name: String
    public var value: Data?
    public init(_ name: String, _ value: Data?) { self.name = name; self.value = value }
    public init(_ name: String, _ value: String) { self.init(name, Data(value.utf8)) }
}

extension Array where Element == KafkaHeader {
    /// The last value of header `name` as UTF-8 text (Kafka allows repeats; last wins).
    public func string(_ name: String) -> String? {
        guard let header = last(where: { $0.name == name }), let value = header.value else { return nil }
        return String(decoding: value, as: UTF8.self)
    }
}

/// A record to produce. `partition == nil` lets the partitioner choose by key.
public struct ProducerRecord: Sendable {
    public var topic: String
    public var partition: Int32?
    public var key: Data?
    public var value: Data?
    public var headers: [KafkaHeader]

    public init(topic: String, partition: Int32? = nil, key: Data? = nil, value: Data?, headers: [KafkaHeader] = []) {
        self.topic = topic; self.partition = partition; self.key = key; self.value = value; self.headers = headers
    }

    public init(topic: String, partition: Int32? = nil, key: String?, value: Data?, headers: [KafkaHeader] = []) {
        self.init(topic: topic, partition: partition, key: key.map { Data($0.utf8) }, value: value, headers: headers)
    }
}

/// Where a produced record was written.
public struct DeliveryReport: Sendable, Equatable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
}

/// A consumed record.
public struct KafkaMessage: Sendable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    public let key: Data?
    public let value: Data?
    public let headers: [KafkaHeader]
    /// Milliseconds since the epoch (create or log-append time), nil when unknown.
    public let timestampMs: Int64?

    public var keyString: String? { key.map { String(decoding: $0, as: UTF8.self) } }
    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }

    /// For tests and tools that build a consumed record by hand.
    public init(topic: String, partition: Int32, offset: Int64, key: Data?, value: Data?,
                headers: [KafkaHeader] = [], timestampMs: Int64? = nil) {
        self.topic = topic; self.partition = partition; self.offset = offset
        self.key = key; self.value = value; self.headers = headers; self.timestampMs = timestampMs
    }
}

public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32
    public init(_ topic: String, _ partition: Int32) { self.topic = topic; self.partition = partition }
    public var description: String { "\(topic)[\(partition)]" }
}

/// A position in a partition: for commits, the offset of the *next* record to read.
public struct TopicPartitionOffset: Hashable, Sendable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    public init(_ topic: String, _ partition: Int32, _ offset: Int64) {
        self.topic = topic; self.partition = partition; self.offset = offset
    }
    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
    public var description: String { "\(topic)[\(partition)]@\(offset)" }

    /// librdkafka's logical offsets.
    public static let beginning = Int64(RD_KAFKA_OFFSET_BEGINNING)
    public static let end = Int64(RD_KAFKA_OFFSET_END)
    public static let stored = Int64(RD_KAFKA_OFFSET_STORED)
}

/// An owned `rd_kafka_topic_partition_list_t`.
final class PartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ offsets: [TopicPartitionOffset]) {
        pointer = rd_kafka_topic_partition_list_new(Int32(offsets.count))
        for entry in offsets {
            rd_kafka_topic_partition_list_add(pointer, entry.topic, entry.partition).pointee.offset = entry.offset
        }
    }

    init(partitions: [TopicPartition]) {
        pointer = rd_kafka_topic_partition_list_new(Int32(partitions.count))
        for entry in partitions { rd_kafka_topic_partition_list_add(pointer, entry.topic, entry.partition) }
    }

    init(topics: [String]) {
        pointer = rd_kafka_topic_partition_list_new(Int32(topics.count))
        for topic in topics { rd_kafka_topic_partition_list_add(pointer, topic, RD_KAFKA_PARTITION_UA) }
    }

    /// Takes ownership of a list librdkafka handed to us.
    init(owning pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) { self.pointer = pointer }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    var offsets: [TopicPartitionOffset] { PartitionList.read(pointer) }

    /// The first per-partition error, if any.
    func firstError(_ operation: String) -> KafkaError? {
        let list = pointer.pointee
        for i in 0..<Int(list.cnt) where list.elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let elem = list.elems[i]
            return KafkaError(code: elem.err, operation: "\(operation) \(String(cString: elem.topic))[\(elem.partition)]")
        }
        return nil
    }

    static func read(_ pointer: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartitionOffset] {
        let list = pointer.pointee
        return (0..<Int(list.cnt)).map { i in
            let elem = list.elems[i]
            return TopicPartitionOffset(String(cString: elem.topic), elem.partition, elem.offset)
        }
    }
}
