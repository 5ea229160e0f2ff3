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
