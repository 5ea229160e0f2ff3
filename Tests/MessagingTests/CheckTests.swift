import Foundation
import Testing
@testable import Messaging
import YishiKafka

@Suite struct SourcePolicyTests {
    let policy = SourcePolicy.standard

    @Test(arguments: [("events.tax", "/yishi/adapters/tax"), ("dept.tax.replies", "/dept/tax"),
                      ("dept.bank.requests", "/yishi/adapters/bank"), ("applications", "/frontdesk/hz-xihu-01"),
                      ("applications", "/portal/zwfw"), ("ops", "/yishi/ctl/alice"), ("ops", "/yishi/ctl"),
                      ("commands.seal-engraving", "/yishi/orchestrator/orch-1"), ("saga-state", "/yishi/orchestrator/a")])
    func allowed(_ topic: String, _ source: String) throws {
        try policy.check(source: source, topic: topic)
    }

    @Test(arguments: [("events.tax", "/yishi/adapters/bank", ["/yishi/adapters/tax"]),
                      ("dept.tax.replies", "/dept/bank", ["/dept/tax"]),
                      ("dept.tax.replies", "/dept/tax/x", ["/dept/tax"]),
                      ("applications", "/frontdeskx", ["/frontdesk/*", "/portal/*", "/yishi/orchestrator/*"]),
                      ("ops", "/yishi/ctlx", ["/yishi/ctl/*"]),
                      ("commands.tax", "/yishi/adapters/tax", ["/yishi/orchestrator/*"])])
    func rejected(_ topic: String, _ source: String, _ expected: [String]) {
        #expect(throws: SourceError(topic: topic, source: source, expected: expected)) {
            try policy.check(source: source, topic: topic)
        }
        let text = SourceError(topic: topic, source: source, expected: expected).description
        #expect(text.contains(topic) && text.contains(source) && text.contains(expected[0]))
    }

    @Test func uncoveredTopicIsAnError() {
        #expect(policy.expected(forTopic: "events.tax.extra") == nil)
        #expect(throws: SourceError(topic: "nope", source: "/x", expected: [])) { try policy.check(source: "/x", topic: "nope") }
    }
}

@Suite struct MessageCheckTests {
    let stepSucceeded = Data(#"{"sagaId":"saga-APP-1","step":"tax-registration","attempt":1,"outputs":{"taxpayerId":"91330106MA2B3C4D5E"}}"#.utf8)

    func check(_ headers: [KafkaHeader], _ value: Data?, topic: String = "events.tax") -> Result<ValidatedMessage, MessageRejection> {
        MessageCheck.validate(message: message(value: value, headers: headers), topic: topic, registry: registry, policy: .standard)
    }

    func rejection(_ headers: [KafkaHeader], _ value: Data?, topic: String = "events.tax") -> MessageRejection? {
        if case .failure(let r) = check(headers, value, topic: topic) { return r }
        Issue.record("expected a rejection")
        return nil
    }

    @Test func validMessage() throws {
        let ok = try check(sampleEnvelope().headers, stepSucceeded).get()
        #expect(ok.envelope == sampleEnvelope())
        #expect(ok.json["outputs"]?["taxpayerId"]?.stringValue == "91330106MA2B3C4D5E")
        #expect(ok.data == stepSucceeded)
    }

    @Test func missingHeader() {
        let r = rejection(replacing(sampleEnvelope().headers, "ce_source", with: nil), stepSucceeded)
        #expect(r?.errorClass == .missingHeader)
        #expect(r?.header == "ce_source")
        #expect(r?.message.contains("ce_source") == true)
    }

    @Test func specVersionBeforeEverythingElse() {
        // Wrong version and no source: the version is reported.
        var h = replacing(sampleEnvelope().headers, "ce_specversion", with: "0.3")
        h = replacing(h, "ce_source", with: nil)
        let r = rejection(h, Data("garbage".utf8))
        #expect(r?.errorClass == .badHeader)
        #expect(r?.header == "ce_specversion")
    }

    @Test func badHeaders() {
        #expect(rejection(replacing(sampleEnvelope().headers, "ce_time", with: "today"), stepSucceeded)?.header == "ce_time")
        #expect(rejection(replacing(sampleEnvelope().headers, "content-type", with: "text/plain"), stepSucceeded)?.header == "content-type")
        let r = rejection(replacing(sampleEnvelope().headers, "ce_yishiattempt", with: "x"), stepSucceeded)
        #expect(r?.errorClass == .badHeader)
        #expect(r?.header == "ce_yishiattempt")
    }

    @Test func sourceBeforeType() {
        let h = sampleEnvelope(type: "cn.gov.yishi.nothing", source: "/dept/tax").headers
        let r = rejection(h, Data("garbage".utf8))
        #expect(r?.errorClass == .wrongSource)
        #expect(r?.message == "ce_source '/dept/tax' may not write topic 'events.tax'; expected /yishi/adapters/tax")
    }

    @Test func unknownType() {
        let r = rejection(sampleEnvelope(type: "cn.gov.yishi.step.exploded").headers, stepSucceeded)
        #expect(r?.errorClass == .unknownType)
        #expect(r?.message.contains("cn.gov.yishi.step.exploded") == true)
    }

    @Test func knownTypeOnTheWrongTopic() {
        let h = sampleEnvelope(type: MessageType.stepRequested, source: "/yishi/orchestrator/o1").headers
        // On its own topic the type passes the topic check (and then fails the schema: wrong payload).
        #expect(rejection(h, stepSucceeded, topic: "commands.tax")?.errorClass == .schema)
        let wrong = rejection(sampleEnvelope(type: MessageType.stepRequested).headers, stepSucceeded)
        #expect(wrong?.errorClass == .wrongTopic)
        #expect(wrong?.message == "ce_type 'cn.gov.yishi.step.requested' does not travel on topic 'events.tax'")
    }

    @Test func notJSONAfterTypeChecks() {
        let r = rejection(sampleEnvelope().headers, Data("{oops".utf8))
        #expect(r?.errorClass == .notJSON)
        #expect(rejection(sampleEnvelope().headers, nil)?.errorClass == .notJSON)
    }

    @Test func schemaViolationCarriesThePath() {
        let bad = Data(#"{"sagaId":"saga-APP-1","step":"Tax Registration","attempt":0,"outputs":{}}"#.utf8)
        let r = rejection(sampleEnvelope().headers, bad)
        #expect(r?.errorClass == .schema)
        #expect(r?.path == "$.attempt")
        #expect(r?.message.hasPrefix("cn.gov.yishi.step.succeeded: $.attempt: minimum:") == true)
        #expect(r?.message.hasSuffix("(and 1 more)") == true)
    }

    @Test func nativeDepartmentMessages() throws {
        let h = Envelope(source: "/yishi/adapters/tax", type: MessageType.native(agency: "tax", message: "SWDJ.request"),
                         time: sampleTime).headers
        let r = rejection(h, Data(#"{"jylsh":"r1"}"#.utf8), topic: "dept.tax.requests")
        #expect(r?.errorClass == .schema)
        #expect(r?.message.contains("required property") == true)
    }

    @Test func prefixIsStripped() {
        #expect(MessageCheck.unprefixed("yishi.events.tax", prefix: "yishi.") == "events.tax")
        #expect(MessageCheck.unprefixed("other.events.tax", prefix: "yishi.") == nil)
    }

    @Test func everyClassHasAKebabName() {
        for c in MessageRejection.Class.allCases {
            #expect(c.rawValue.allSatisfy { $0.isLowercase || $0 == "-" }, "\(c)")
        }
    }
}

@Suite struct DeadLetterTests {
    let original = message(topic: "yishi.events.tax", partition: 3, offset: 42, key: "saga-APP-1",
                           value: Data([0x7B, 0xFF, 0x00, 0x22]),  // not even UTF-8: kept byte for byte
                           headers: sampleEnvelope().headers + [KafkaHeader("binary", Data([0, 1, 2])), KafkaHeader("nullvalue", nil as Data?)])
    let rejection = MessageRejection(.schema, "cn.gov.yishi.step.succeeded: $.attempt: minimum: 0 is less than 1", path: "$.attempt")
    let at = Date(timeIntervalSince1970: 1_772_414_160)

    @Test func recordKeepsTheOriginalAndAddsTheOrigin() {
        let r = DeadLetter.record(for: original, group: "yishi-orchestrator", error: rejection, at: at, dlqTopic: "yishi.dlq")
        #expect(r.topic == "yishi.dlq")
        #expect(r.partition == nil)
        #expect(r.key == original.key)
        #expect(r.value == original.value)
        #expect(Array(r.headers.prefix(original.headers.count)) == original.headers)
        let added = Dictionary(uniqueKeysWithValues: r.headers.dropFirst(original.headers.count).map {
            ($0.name, String(decoding: $0.value!, as: UTF8.self))
        })
        #expect(added == [
            "yishi.dlq.original.topic": "yishi.events.tax",
            "yishi.dlq.original.partition": "3",
            "yishi.dlq.original.offset": "42",
            "yishi.dlq.original.timestamp": "1772414100000",
            "yishi.dlq.consumer.group": "yishi-orchestrator",
            "yishi.dlq.error.class": "schema",
            "yishi.dlq.error.message": "cn.gov.yishi.step.succeeded: $.attempt: minimum: 0 is less than 1",
            "yishi.dlq.error.path": "$.attempt",
            "yishi.dlq.timestamp": "2026-03-02T01:16:00.000Z",
        ])
    }

    @Test func headerRejectionRecordsTheHeaderAsPath() {
        let r = DeadLetter.record(for: original, group: "g", error: MessageRejection(.missingHeader, "m", header: "ce_type"),
                                  at: at, dlqTopic: "yishi.dlq")
        #expect(r.headers.string("yishi.dlq.error.path") == "ce_type")
        #expect(r.headers.string("yishi.dlq.error.class") == "missing-header")
    }

    @Test func parseAndReplay() throws {
        let r = DeadLetter.record(for: original, group: "yishi-orchestrator", error: rejection, at: at, dlqTopic: "yishi.dlq")
        let consumed = message(topic: "yishi.dlq", partition: 0, offset: 7, key: "saga-APP-1", value: r.value, headers: r.headers)
        let dl = try DeadLetter(consumed)
        #expect(dl.originalTopic == "yishi.events.tax")
        #expect(dl.originalPartition == 3)
        #expect(dl.originalOffset == 42)
        #expect(dl.originalTimestampMs == 1_772_414_100_000)
        #expect(dl.consumerGroup == "yishi-orchestrator")
        #expect(dl.errorClass == "schema")
        #expect(dl.errorPath == "$.attempt")
        #expect(dl.failedAt == at)
        #expect(dl.headers == original.headers)

        let replay = dl.replayRecord(from: TopicPartitionOffset("yishi.dlq", 0, 7))
        #expect(replay.topic == "yishi.events.tax")
        #expect(replay.key == original.key)
        #expect(replay.value == original.value)
        #expect(Array(replay.headers.dropLast()) == original.headers)
        #expect(replay.headers.last == KafkaHeader("yishi.dlq.replayed", "yishi.dlq[0]@7"))
        #expect(!replay.headers.contains { $0.name.hasPrefix("yishi.dlq.") && $0.name != "yishi.dlq.replayed" })
    }

    @Test func deadLetteringAReplayedRecordKeepsOneOrigin() throws {
        // A replay that fails again: the old replayed marker goes, the new origin is the only one.
        var headers = original.headers
        headers.append(KafkaHeader("yishi.dlq.replayed", "yishi.dlq[0]@7"))
        let again = message(topic: "yishi.events.tax", partition: 3, offset: 99, value: original.value, headers: headers)
        let r = DeadLetter.record(for: again, group: "g", error: rejection, at: at, dlqTopic: "yishi.dlq")
        let dl = try DeadLetter(message(topic: "yishi.dlq", offset: 8, value: r.value, headers: r.headers))
        #expect(dl.originalOffset == 99)
        #expect(dl.headers == original.headers)
    }

    @Test func unreadableDeadLetter() {
        #expect {
            try DeadLetter(message(topic: "yishi.dlq", offset: 5, value: nil, headers: [KafkaHeader("yishi.dlq.original.topic", "t")]))
        } throws: { ($0 as? DeadLetterError)?.description == "DLQ record at offset 5: missing header 'yishi.dlq.original.partition'" }
    }
}
