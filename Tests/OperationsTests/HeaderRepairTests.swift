import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Repairing a dead letter's headers on replay", .serialized)
struct HeaderRepairTests {
    /// Another SDK wrote `Content-Type`: the DLQ reason names it, and `yishi dlq replay
    /// --set-header/--remove-header` repairs the record, which then starts its saga; the repair is
    /// in the access record.
    @Test("Content-Type instead of content-type: named in the DLQ, repaired on replay, recorded", .timeLimit(.minutes(2)))
    func capitalisedContentType() async throws {
        let fx = try OpsFixture()
        let cli = try CLI(fx: fx)
        let orchestrator = try BackgroundOrchestrator(fx.orchestratorConfig())
        defer { orchestrator.stop() }
        guard case .object(var form) = try SeedApplications.cloned(repoRoot: repoRoot, count: 1, tag: "HDR")[0] else { return }
        let id = "APP-HDR-00001"
        form["applicationId"] = .string(id)
        let envelope = Envelope(source: "/frontdesk/test", type: MessageType.applicationSubmitted, time: fx.clock.now().date, subject: id)
        let headers = envelope.headers.map { $0.name == Envelope.Header.contentType ? KafkaHeader("Content-Type", "application/json") : $0 }
        _ = try await KafkaProducer(config: fx.hub.kafka()).send(
            ProducerRecord(topic: fx.topic("applications"), key: id, value: Data(JSONValue.object(form).text().utf8), headers: headers))

        let letters = DeadLetters(hub: fx.hub)
        var dead: [KafkaMessage] = []
        try await eventually(every: .milliseconds(500), timeout: .seconds(30), "the application in the DLQ") { dead = try letters.read(); return dead.count == 1 }
        let entry = DeadLetters.entry(dead[0], detail: false, revealPII: false)
        #expect(entry.errorClass == "missing-header")
        #expect(entry.errorMessage.contains("'content-type'") && entry.errorMessage.contains("found 'Content-Type' instead"), "\(entry.errorMessage)")

        let replay = try cli.run(["dlq", "replay", entry.id, "--set-header", "content-type=application/json", "--remove-header", "Content-Type"])
        #expect(replay.status == 0, "\(replay)")
        let saga = try await fx.waitForSaga(id, "the repaired application started its saga") { $0.status == .running }
        #expect(saga.steps[0].status == .running)
        #expect(try letters.read().count == 1, "the repaired record was not dead-lettered again")

        let origin = try TopicReader(hub: fx.hub).read(topic: fx.topic("applications"), partitions: Array(0..<fx.partitions)) { $0.keyString == id }
        #expect(origin.count == 2)
        #expect(origin.last?.headers.string("content-type") == "application/json" && origin.last?.headers.string("Content-Type") == nil)
        #expect(origin.last?.value == origin.first?.value, "the value is replayed byte for byte")

        let audit = try TopicReader(hub: fx.hub).read(topic: fx.topic("ops-audit"), partitions: Array(0..<fx.partitions))
        let record = try JSONDecoder().decode(AccessLog.Entry.self, from: try #require(audit.last?.value))
        #expect(record.what == .dlqReplay && record.by == "operator-wang", "\(record)")
        #expect(record.headerChanges == ["remove Content-Type", "set content-type=application/json"], "\(record)")

        // A usage error names the problem and sends nothing.
        let bad = try cli.run(["dlq", "replay", entry.id, "--set-header", "yishi.dlq.error.class=x"])
        #expect(bad.status == 2 && bad.err.contains("yishi.dlq"), "\(bad)")
    }
}
