import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// The CLI's changelog reader is read-only: a record it cannot decode is skipped and reported
/// (topic, partition, offset and why), never the end of the answer (issue 10, kind 2).
@Suite("Unreadable changelog records are skipped and reported", .serialized)
struct UnreadableChangelogTests {
    @Test("a garbage saga-state and saga-events record: the list and the audit trail still answer, naming the skipped offsets")
    func garbageInTheChangelog() async throws {
        let fixture = try OpsFixture(partitions: 1)
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let bundle = try #require(library.newest("enterprise-opening"))
        var good = SagaState(sagaId: "APP-GOOD-1", bundle: bundle)
        good.status = .running
        let producer = try KafkaProducer(config: fixture.hub.kafka())
        let state = fixture.hub.topic("saga-state"), events = fixture.hub.topic("saga-events")
        _ = try await producer.send(ProducerRecord(topic: state, partition: 0, key: "APP-GOOD-1", value: try JSONEncoder().encode(good)))
        let bad = try await producer.send(ProducerRecord(topic: state, partition: 0, key: "APP-BAD-1", value: Data([0xff, 0x00, 0x7b])))
        let audit = Envelope(source: "/yishi/orchestrator/o1", type: MessageType.sagaAudit("submitted"), time: Date(), subject: "APP-GOOD-1")
        let badEvent = try await producer.send(ProducerRecord(topic: events, partition: 0, key: "APP-GOOD-1", value: Data("{\"seq\": \"x\"}".utf8),
                                                              headers: audit.headers))

        var source = SagaSource(hub: fixture.hub, mode: .changelog)
        let (sagas, _) = try source.list(SagaFilter(), library: library)
        #expect(sagas.map(\.sagaId) == ["APP-GOOD-1"])
        #expect(source.notes.contains { $0.contains("\(state)[0]@\(bad.offset)") && $0.contains("APP-BAD-1") }, "\(source.notes)")

        let changelog = Changelog(hub: fixture.hub)
        let trail = try changelog.audit(of: "APP-GOOD-1")
        #expect(trail.isEmpty)
        #expect(changelog.skipped.all.contains { $0.contains("\(events)[0]@\(badEvent.offset)") }, "\(changelog.skipped.all)")

        // One saga whose newest record is unreadable: the newest readable one answers, and the skip is said.
        _ = try await producer.send(ProducerRecord(topic: state, partition: 0, key: "APP-GOOD-1", value: Data("not json".utf8)))
        let one = Changelog(hub: fixture.hub)
        #expect(try one.state(of: "APP-GOOD-1")?.status == .running)
        #expect(one.skipped.all.count == 1)
    }
}

/// A dead letter of a near-1 MB record is a cut copy (it must fit message.max.bytes itself);
/// `dlq replay` sends the whole original, read back from its topic, never the cut copy.
@Suite("Cut dead letters replay the whole original", .serialized)
struct CutDeadLetterTests {
    @Test func replayReadsTheOriginal() async throws {
        let fixture = try OpsFixture(partitions: 1)
        let producer = try KafkaProducer(config: fixture.hub.kafka())
        let headers = Envelope(source: "/frontdesk/test", type: MessageType.applicationSubmitted, time: Date(), subject: "APP-CUT-1").headers
        let applications = fixture.hub.topic("applications")
        let empty = RecordSizeLimit.wireSize(ProducerRecord(topic: applications, key: "APP-CUT-1", value: Data(), headers: headers))
        let value = Data((0..<(RecordSizeLimit.librdkafkaDefault - empty - 10)).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let at = try await producer.send(ProducerRecord(topic: applications, partition: 0, key: "APP-CUT-1", value: value, headers: headers))
        let original = KafkaMessage(topic: applications, partition: 0, offset: at.offset, key: Data("APP-CUT-1".utf8), value: value, headers: headers)
        let dead = DeadLetter.record(for: original, group: "g", error: MessageRejection(.notJSON, "not JSON"), at: Date(),
                                     dlqTopic: fixture.hub.topic("dlq"))
        _ = try await producer.send(dead)

        let letters = DeadLetters(hub: fixture.hub)
        let onDLQ = try letters.read()
        let entry = DeadLetters.entry(try #require(onDLQ.first), detail: false, revealPII: false)
        #expect(entry.truncated == ["value"] && entry.originalSize == RecordSizeLimit.librdkafkaDefault - 10)
        _ = try letters.replay(onDLQ)
        let back = try TopicReader(hub: fixture.hub).read(topic: applications, partitions: [0]).filter { $0.offset > at.offset }
        let replayed = try #require(back.first)
        #expect(replayed.value == value, "the replay is not the whole original")
        #expect(replayed.headers.string(DeadLetter.Header.replayed) != nil)
    }
}
