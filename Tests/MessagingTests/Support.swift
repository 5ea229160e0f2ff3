import Foundation
@testable import Messaging
// @testable: KafkaMessage has no public initializer (only the consumer makes them).
import YishiKafka

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func message(topic: String = "yishi.events.tax", partition: Int32 = 3, offset: Int64 = 42, key: String? = "saga-APP-1",
             value: Data?, headers: [KafkaHeader], timestampMs: Int64? = 1_772_414_100_000) -> KafkaMessage {
    KafkaMessage(topic: topic, partition: partition, offset: offset, key: key.map { Data($0.utf8) }, value: value,
                 headers: headers, timestampMs: timestampMs)
}

func json(_ text: String) -> JSON { try! JSON.parse(Data(text.utf8)) }

/// 2026-03-02T01:15:00.250Z: millisecond-aligned so round trips compare equal.
let sampleTime = Date(timeIntervalSince1970: 1_772_414_100.25)

func sampleEnvelope(type: String = MessageType.stepSucceeded, source: String = "/yishi/adapters/tax") -> Envelope {
    Envelope(id: "saga-APP-1/tax-registration/1/succeeded", source: source, type: type, time: sampleTime,
             subject: "tax-registration", traceParent: TraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
             sagaId: "saga-APP-1", step: "tax-registration", attempt: 1, requestId: "saga-APP-1/tax-registration/r0")
}

func replacing(_ headers: [KafkaHeader], _ name: String, with value: String?) -> [KafkaHeader] {
    var h = headers.filter { $0.name != name }
    if let value { h.append(KafkaHeader(name, value)) }
    return h
}

let registry: SchemaRegistry = {
    var r = try! SchemaRegistry.load(directory: repoRoot.appendingPathComponent("schemas"))
    try! r.loadNative(directory: repoRoot.appendingPathComponent("adapters/tax/native"), agency: "tax")
    return r
}()
