import Foundation
import Testing
@testable import Messaging
import YishiKafka

/// A dead letter must fit the producer's `message.max.bytes` itself, or writing it fails the very
/// transaction that was to quarantine the record (issue 10, kind 2).
@Suite struct DeadLetterSizeTests {
    let limit = RecordSizeLimit(maxBytes: 10_000)
    let rejection = MessageRejection(.schema, "$.x: wrong", path: "$.x")

    func letter(_ m: KafkaMessage, limit: RecordSizeLimit) throws -> (DeadLetter, Int) {
        let r = DeadLetter.record(for: m, group: "g", error: rejection, at: Date(), dlqTopic: "yishi.dlq", limit: limit)
        let back = try DeadLetter(message(topic: "yishi.dlq", offset: 1, key: r.key.map { String(decoding: $0, as: UTF8.self) },
                                          value: r.value, headers: r.headers))
        return (back, RecordSizeLimit.wireSize(r))
    }

    @Test func smallRecordIsCopiedWhole() throws {
        let m = message(value: Data("{}".utf8), headers: [KafkaHeader("ce_type", "t")])
        let (dl, _) = try letter(m, limit: limit)
        #expect(dl.truncated.isEmpty && dl.originalSize == nil && dl.value == m.value && dl.headers == m.headers)
    }

    @Test func nearLimitValueIsCutToFit() throws {
        let value = Data(repeating: 0x41, count: 9_900)
        let m = message(value: value, headers: [KafkaHeader("ce_type", "t")])
        let (dl, size) = try letter(m, limit: limit)
        #expect(size <= limit.maxBytes && size > limit.maxBytes - 64, "cut more than needed: \(size)")
        #expect(dl.truncated == ["value"] && dl.headers == m.headers && dl.key == m.key)
        #expect(dl.value.map { value.starts(with: $0) } == true)
        #expect(dl.originalSize == RecordSizeLimit.wireSize(ProducerRecord(topic: m.topic, key: m.key, value: m.value, headers: m.headers)))
        #expect(dl.origin == TopicPartitionOffset("yishi.events.tax", 3, 42) && dl.errorClass == "schema")
    }

    @Test func hugeHeadersAndKeyAreCutToo() throws {
        let m = message(key: String(repeating: "k", count: 12_000), value: Data("{}".utf8),
                        headers: [KafkaHeader("big", Data(repeating: 0x42, count: 11_000))])
        let (dl, size) = try letter(m, limit: limit)
        #expect(size <= limit.maxBytes)
        #expect(dl.truncated == ["value", "headers", "key"] && dl.headers.isEmpty)
        #expect(dl.key.map { $0.count < 10_000 && $0.count > 8_000 } == true)
        #expect(dl.errorClass == "schema" && dl.originalTopic == "yishi.events.tax")
    }

    @Test func longReasonIsCapped() throws {
        let m = message(value: Data("{}".utf8), headers: [])
        let r = DeadLetter.record(for: m, group: "g", error: MessageRejection(.unprocessable, String(repeating: "原因", count: 5_000)),
                                  at: Date(), dlqTopic: "yishi.dlq")
        let text = try #require(r.headers.string(DeadLetter.Header.errorMessage))
        #expect(text.utf8.count <= DeadLetter.maxErrorMessageBytes && text.hasSuffix("…"))
    }
}

/// Decoding poison: JSON nested far deeper than any message (a stack-overflow attempt) is
/// `not-json`, never a crash.
@Suite struct DeepJSONTests {
    @Test(arguments: [1_000, 200_000])
    func deeplyNestedValueIsRejected(depth: Int) {
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        do {
            _ = try JSON.parse(text)
            Issue.record("JSON nested \(depth) deep was accepted")
        } catch {}
    }
}
