import Foundation
import Testing
@testable import YishiKafka

/// `RecordSizeLimit` counts a record exactly as librdkafka does at produce time: a record at the
/// limit is accepted, one byte more is refused with MSG_SIZE_TOO_LARGE (no broker needed: the
/// check happens in `rd_kafka_produceva`).
@Suite struct RecordSizeLimitTests {
    func record(valueBytes: Int, headers: [KafkaHeader]) -> ProducerRecord {
        ProducerRecord(topic: "size-check", key: "APP-1", value: Data(repeating: 0x61, count: valueBytes), headers: headers)
    }

    @Test(arguments: [1_000_000, 50_000])
    func countsLikeLibrdkafka(limit: Int) throws {
        var config = KafkaConfig(bootstrapServers: "127.0.0.1:1", ["log_level": "0"])
        if limit != RecordSizeLimit.librdkafkaDefault { config["message.max.bytes"] = String(limit) }
        let guardLimit = RecordSizeLimit(config: config)
        #expect(guardLimit.maxBytes == limit)
        let headers = [KafkaHeader("ce_type", "cn.gov.yishi.application.submitted"), KafkaHeader("empty", Data()),
                       KafkaHeader("null", nil as Data?), KafkaHeader("名字", "张三")]
        let empty = RecordSizeLimit.wireSize(record(valueBytes: 0, headers: headers))
        let atLimit = record(valueBytes: limit - empty, headers: headers)
        let over = record(valueBytes: limit - empty + 1, headers: headers)
        #expect(guardLimit.fits(atLimit) && !guardLimit.fits(over))
        let producer = try KafkaProducer(config: config)
        try producer.enqueue(atLimit)
        #expect(throws: KafkaError.self) { try producer.enqueue(over) }
        #expect(throws: RecordTooLarge.self) { try guardLimit.check(over) }
        do { try guardLimit.check(over) } catch {
            #expect(error.description.contains("size-check") && error.description.contains("'APP-1'")
                    && error.description.contains("\(limit + 1) bytes"))
        }
    }
}
