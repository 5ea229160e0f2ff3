import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// Issue 10, kind 2: no record the orchestrator would write above its producer's
/// `message.max.bytes` may stop it (a produce error there aborted the batch, the orchestrator
/// exited, and every restart read the same input and exited again).
@Suite("Records above message.max.bytes never stop the orchestrator", .serialized)
struct RecordSizeTests {
    /// A hub whose orchestrator's producer takes records of at most `limit` bytes (the guard reads
    /// the same `message.max.bytes` a deployment sets; small here so the test needs few sagas).
    func orchestrator(_ hub: TestHub, limit: Int) throws -> BackgroundOrchestrator {
        var config = hub.config(instance: "o1")
        config.connection.kafka["message.max.bytes"] = String(limit)
        return try BackgroundOrchestrator(config)
    }

    @Test("an ops list larger than one ops-replies record comes in pages that fit; the orchestrator keeps running",
          .timeLimit(.minutes(3)))
    func oversizedOpsListIsPaged() async throws {
        let hub = try TestHub(partitions: 1)
        try hub.ensureTopics()
        let limit = 60_000
        let orchestrator = try orchestrator(hub, limit: limit)
        defer { orchestrator.stop() }
        let producer = try KafkaProducer(config: hub.kafka())
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: 60, tag: "page")
        let ids = Set(forms.compactMap { $0["applicationId"]?.stringValue })
        try hub.submit(forms, producer: producer)
        var all = 0
        for _ in 0..<60 where all < ids.count {
            all = try await sagaCount(hub, producer)
            if all < ids.count { try await Task.sleep(for: .milliseconds(300)) }
        }
        #expect(all == ids.count, "only \(all) of \(ids.count) sagas started")

        // All 60 sagas in one reply would be far above 60,000 bytes: the orchestrator returns what fits and `more`.
        var seen: [String] = []
        var after: SagaCursor?
        var pages = 0
        while pages < 20 {
            let reply = try await hub.ops(OpsRequest(requestId: "list-\(pages)", by: "op", action: .list,
                                                     filter: SagaFilter(limit: 1000, after: after)), partition: 0, producer: producer)
            pages += 1
            #expect(reply.ok, "list refused: \(reply.error ?? "")")
            let page = reply.sagas ?? []
            #expect(try JSONEncoder().encode(reply).count < limit, "a reply above message.max.bytes")
            seen += page.map(\.sagaId)
            guard reply.more == true, let last = page.last else { break }
            after = SagaCursor(after: last)
        }
        #expect(pages >= 2, "the list fitted one reply: the test does not exercise paging")
        #expect(seen.count == ids.count && Set(seen) == ids, "paging lost or repeated sagas: \(seen.count) seen")
        #expect(orchestrator.failure == nil, "orchestrator stopped: \(orchestrator.failure ?? "")")

        // Still serving: a later application starts a saga.
        let later = try SeedApplications.cloned(repoRoot: repoRoot, count: 61, tag: "page").last!
        try hub.submit([later], producer: producer)
        let laterId = try #require(later["applicationId"]?.stringValue)
        var started = false
        for n in 0..<40 where !started {
            started = try await hub.ops(OpsRequest(requestId: "get-later-\(n)", by: "op", action: .get, sagaId: laterId), producer: producer).ok
            if !started { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(started && orchestrator.failure == nil)
    }

    /// Sagas on partition 0 (a list with the largest limit that still fits, counted page by page).
    func sagaCount(_ hub: TestHub, _ producer: KafkaProducer) async throws -> Int {
        var count = 0
        var after: SagaCursor?
        for page in 0..<50 {
            let reply = try await hub.ops(OpsRequest(requestId: "n-\(UUID().uuidString.prefix(8))-\(page)", by: "op", action: .list,
                                                     filter: SagaFilter(limit: 1000, after: after)), partition: 0, producer: producer)
            count += reply.sagas?.count ?? 0
            guard reply.more == true, let last = reply.sagas?.last else { break }
            after = SagaCursor(after: last)
        }
        return count
    }

    @Test("an application whose saga would outgrow message.max.bytes is dead-lettered too-large (cut to fit); others complete",
          .timeLimit(.minutes(3)))
    func oversizedSagaIsRefused() async throws {
        let hub = try TestHub(partitions: 2)
        try hub.ensureTopics()
        let limit = 100_000
        let responders = try hub.responders()
        defer { responders.close() }
        let orchestrator = try orchestrator(hub, limit: limit)
        defer { orchestrator.stop() }
        let producer = try KafkaProducer(config: hub.kafka())
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: 2, tag: "huge")
        guard case .object(var huge) = forms[0], case .object(var person)? = huge["legalRepresentative"] else { throw SetupError("seed form") }
        person["name"] = .string(String(repeating: "张", count: 40_000))  // 120,000 bytes of UTF-8: the schema sets no maxLength
        huge["legalRepresentative"] = .object(person)
        let hugeId = try #require(huge["applicationId"]?.stringValue)
        try hub.submit([.object(huge), forms[1]], producer: producer)

        let finished = try await finishedSagas(hub: hub, expecting: 1, timeout: .seconds(90))
        #expect(finished[forms[1]["applicationId"]!.stringValue!] == "completed")
        let dead = try await readAll(hub.topic("dlq"), partitions: hub.partitions, expecting: 1, config: hub.kafka())
        let message = try #require(dead.first)
        let letter = try DeadLetter(message)
        #expect(letter.errorClass == "too-large")
        #expect(letter.errorMessage.contains("key '\(hugeId)'") && letter.errorMessage.contains("bytes"), "\(letter.errorMessage)")
        #expect(letter.originalTopic == hub.topic("applications"))
        #expect(letter.truncated == ["value"], "the copy of a record above the limit must be cut")
        #expect((letter.originalSize ?? 0) > limit)
        #expect(RecordSizeLimit.wireSize(ProducerRecord(topic: message.topic, key: message.key, value: message.value,
                                                        headers: message.headers)) <= limit)
        let get = try await hub.ops(OpsRequest(requestId: "get-huge", by: "op", action: .get, sagaId: hugeId), producer: producer)
        #expect(!get.ok, "a refused application left a saga behind")
        #expect(orchestrator.failure == nil, "orchestrator stopped: \(orchestrator.failure ?? "")")
    }

    @Test("a dead letter of a near-1 MB record is written by a producer with librdkafka's default limit")
    func nearOneMegabyteDeadLetter() async throws {
        let hub = try TestHub(partitions: 1)
        try hub.ensureTopics()
        // The original is 10 bytes under librdkafka's default limit: it was produced; its copy plus the DLQ headers is not.
        let headers = Envelope(source: "/frontdesk/test", type: MessageType.applicationSubmitted, time: Date(), subject: "APP-NEAR-1MB").headers
        let empty = RecordSizeLimit.wireSize(ProducerRecord(topic: "t", key: "APP-NEAR-1MB", value: Data(), headers: headers))
        let value = Data(repeating: UInt8(ascii: "x"), count: RecordSizeLimit.librdkafkaDefault - empty - 10)
        let original = KafkaMessage(topic: hub.topic("applications"), partition: 0, offset: 41, key: Data("APP-NEAR-1MB".utf8),
                                    value: value, headers: headers)
        let record = DeadLetter.record(for: original, group: hub.prefix + "orchestrator", error: MessageRejection(.notJSON, "not JSON"),
                                       at: Date(), dlqTopic: hub.topic("dlq"))
        let producer = try KafkaProducer(config: hub.kafka())
        let report = try await producer.send(record)
        let back = try await readAll(hub.topic("dlq"), partitions: 1, expecting: 1, config: hub.kafka())
        let letter = try DeadLetter(try #require(back.first))
        #expect(report.topic == hub.topic("dlq"))
        #expect(letter.origin == TopicPartitionOffset(hub.topic("applications"), 0, 41))
        #expect(letter.truncated == ["value"] && letter.value.map { value.starts(with: $0) } == true)
        #expect(letter.headers == original.headers, "the original headers are kept whole")
        #expect((letter.value?.count ?? 0) > 990_000, "cut more than needed")
    }
}
