import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Operator queries and actions against an orchestrator on Tansu", .serialized)
struct LiveTests {
    @Test("single and bulk actions reach the audit trail with the operator; dry run changes nothing; refusals per saga; paging; changelog agrees",
          .timeLimit(.minutes(3)))
    func actionsAndQueries() async throws {
        let fx = try OpsFixture()
        let responders = try fx.responders(reject: ["social-security"])
        defer { responders.close() }
        let orchestrator = try BackgroundOrchestrator(fx.orchestratorConfig())
        defer { orchestrator.stop() }
        let ids = try fx.submit(4, tag: "LIVE").map { $0["applicationId"]!.stringValue! }
        let manual = SagaFilter(status: [.manual], step: "social-security")
        var source = SagaSource(hub: fx.hub, mode: .live)
        try await eventually(every: .milliseconds(500), timeout: .seconds(60), "4 sagas with a social-security case") {
            (try? source.list(manual, library: library).sagas.count) == 4
        }

        // The orchestrator checks operator input: a --set field the step's payload does not have and
        // an --output the action does not produce are refused, naming the valid ones; nothing changes.
        let client = OpsClient(hub: fx.hub)
        let badSet = try client.send(OpsRequest(requestId: client.newRequestId(), by: fx.hub.operatorName, action: .retry, sagaId: ids[0],
                                                step: "social-security", data: ["employees": .object(["expectedCount": 6])]))
        #expect(!badSet.ok && badSet.error?.contains("--set employees") == true && badSet.error?.contains("expectedEmployees") == true, "\(badSet)")
        let badBulk = Render.ActionOutcome(action: "retry", dryRun: true, replies: try client.broadcast(OpsRequest(
            requestId: client.newRequestId(), by: fx.hub.operatorName, action: .retry, step: "social-security",
            data: ["employees": 6], filter: manual, dryRun: true)))
        #expect(badBulk.affected.isEmpty && badBulk.refused.count == 4 && badBulk.refused.allSatisfy { $0.reason.contains("valid:") }, "\(badBulk)")
        let badOutput = try client.send(OpsRequest(requestId: client.newRequestId(), by: fx.hub.operatorName, action: .resolve, sagaId: ids[0],
                                                   step: "social-security", note: "done", data: ["socialSecurityNo": "X"]))
        #expect(!badOutput.ok && badOutput.error?.contains("employerSocialSecurityNo") == true, "\(badOutput)")
        let goodSet = try client.send(OpsRequest(requestId: client.newRequestId(), by: fx.hub.operatorName, action: .retry, sagaId: ids[0],
                                                 step: "social-security", data: ["expectedEmployees": 6], dryRun: true))
        #expect(goodSet.ok, "a real payload field passes the check: \(goodSet)")

        // One saga: skip, by operator-li.
        let skip = try client.send(OpsRequest(requestId: client.newRequestId(), by: fx.hub.operatorName, action: .skip, sagaId: ids[0],
                                              step: "social-security", reason: "registered at the counter"))
        #expect(skip.ok && skip.affected == [ids[0]], "\(skip)")

        // The rest in bulk: a dry run first changes nothing.
        var bulk = OpsRequest(requestId: client.newRequestId(), by: "operator-chen", action: .skip, step: "social-security",
                              reason: "bulk: counter registration", filter: manual, dryRun: true)
        let dry = Render.ActionOutcome(action: "skip", dryRun: true, replies: try client.broadcast(bulk))
        #expect(dry.affected == Array(ids[1...]).sorted() && dry.refused.isEmpty, "\(dry)")
        #expect(try source.list(manual, library: library).sagas.count == 3, "the dry run changed sagas")
        bulk.requestId = client.newRequestId()
        bulk.dryRun = nil
        let real = Render.ActionOutcome(action: "skip", dryRun: false, replies: try client.broadcast(bulk))
        #expect(real.affected == Array(ids[1...]).sorted(), "\(real)")

        let finished = try await fx.waitForSaga(ids[3], "completed") { $0.status == .completed }
        #expect(finished.steps[library.newest("enterprise-opening")!.stepIndex(of: "social-security")!].status == .skipped)
        for id in ids { _ = try await fx.waitForSaga(id, "completed") { $0.status == .completed } }

        // Every skip is in its saga's audit trail with the operator who asked.
        for (n, id) in ids.enumerated() {
            let trail = try Changelog(hub: fx.hub).audit(of: id)
            let skipped = trail.filter { $0.kind == .stepSkipped }
            #expect(skipped.count == 1 && skipped.first?.by == (n == 0 ? "operator-li" : "operator-chen"), "\(id): \(skipped)")
        }

        // A bulk action the engine refuses for every saga says so per saga.
        let resume = try client.broadcast(OpsRequest(requestId: client.newRequestId(), by: "operator-li", action: .resume,
                                                     filter: SagaFilter(bundle: "enterprise-opening")))
        let refused = Render.ActionOutcome(action: "resume", dryRun: false, replies: resume)
        #expect(refused.affected.isEmpty && refused.refused.map(\.sagaId) == ids.sorted(), "\(refused)")

        // Paging over partitions: two pages of two, in order, nothing twice.
        var page = SagaFilter(bundle: "enterprise-opening", limit: 2)
        let first = try source.list(page, library: library)
        let cursor = try #require(first.next)
        page.after = cursor
        let second = try source.list(page, library: library)
        #expect(first.sagas.count == 2 && second.sagas.count == 2 && second.next == nil)
        #expect((first.sagas + second.sagas).map(\.sagaId) == ids.sorted(), "submitted together: ordered by id")

        // The changelog says the same as the orchestrator.
        var changelog = SagaSource(hub: fx.hub, mode: .changelog)
        for id in ids {
            #expect(try changelog.state(of: id) == (try source.state(of: id)), "\(id)")
        }
        #expect(Set(try changelog.list(SagaFilter(status: [.completed]), library: library).sagas.map(\.sagaId)) == Set(ids))
        #expect(changelog.answeredBy == .changelog)
        #expect(throws: OperationsError.self) { try changelog.state(of: "APP-NO-SUCH") }
    }

    @Test("a dead letter replayed to its origin completes its work; lag answers; revealing personal data is recorded", .timeLimit(.minutes(2)))
    func deadLettersLagAndAccessLog() async throws {
        let fx = try OpsFixture()
        let orchestrator = try BackgroundOrchestrator(fx.orchestratorConfig())
        defer { orchestrator.stop() }
        let producer = try KafkaProducer(config: fx.hub.kafka())
        // An agency's answer that arrives before its saga exists is dead-lettered (unknown saga)…
        let id = "APP-DLQ-00000"
        let answer = Envelope(source: "/yishi/adapters/business-registration", type: MessageType.stepSucceeded, time: fx.clock.now().date,
                              subject: id, sagaId: id, step: "name-reservation", attempt: 1)
        let outputs: JSONValue = ["sagaId": .string(id), "step": "name-reservation", "attempt": 1,
                                  "outputs": ["reservationId": "R-1", "approvedName": "杭州云栖茶饮有限公司", "validUntil": "2026-04-01"]]
        _ = try await producer.send(answer.record(topic: fx.topic("events.business-registration"), key: id, data: Data(outputs.text().utf8)))
        let letters = DeadLetters(hub: fx.hub)
        var dead: [KafkaMessage] = []
        try await eventually(every: .milliseconds(500), timeout: .seconds(30), "the early answer in the DLQ") { dead = try letters.read(); return dead.count == 1 }
        let entry = DeadLetters.entry(dead[0], detail: true, revealPII: false)
        #expect(entry.originalTopic == fx.topic("events.business-registration") && entry.errorClass == "unprocessable", "\(entry)")
        #expect(entry.payload?["outputs"]?["reservationId"] == "R-1")

        // …then the application arrives (nobody answers the agency's request), and the replay lands.
        guard case .object(var form) = try SeedApplications.cloned(repoRoot: repoRoot, count: 1, tag: "DLQ")[0] else { return }
        form["applicationId"] = .string(id)
        try SeedApplications.submit([.object(form)], topicPrefix: fx.prefix, producer: producer, time: fx.clock.now().date)
        _ = try await fx.waitForSaga(id, "name reservation dispatched") { $0.steps[0].status == .running }
        let replayed = try letters.replay(dead)
        #expect(replayed == ["\(fx.topic("dlq"))[\(dead[0].partition)]@\(dead[0].offset)"])
        let after = try await fx.waitForSaga(id, "the replayed answer applied") { $0.steps[0].status == .succeeded }
        #expect(after.steps[1].status == .running, "registration dispatched after the replayed answer")
        let origin = try TopicReader(hub: fx.hub).read(topic: fx.topic("events.business-registration"),
                                                       partitions: Array(0..<fx.partitions)) { $0.keyString == id }
        #expect(origin.count == 2 && origin[1].headers.string(DeadLetter.Header.replayedBy) == "operator-li")
        #expect(origin[1].value == origin[0].value, "the replay carries the original value byte for byte")

        // Lag: the orchestrator's group has committed its inputs; no adapter runs here.
        let rows = try LagProbe(hub: fx.hub).knownGroups(agencies: try hubAgencies()).flatMap { try LagProbe(hub: fx.hub).lag(group: $0.group, topics: $0.topics) }
        let applications = try #require(rows.first { $0.group == fx.hub.orchestratorGroup && $0.topic == fx.topic("applications") })
        #expect(applications.committedPartitions >= 1 && applications.partitions.count == Int(fx.partitions))
        #expect(rows.filter { $0.group.hasSuffix("adapter.tax") }.allSatisfy { $0.committedPartitions == 0 })
        #expect(rows.allSatisfy { $0.lag >= 0 })

        // --reveal-pii: the access record is on ops-audit before anything is shown.
        try AccessLog(hub: fx.hub).record(.revealPII, command: ["yishi", "sagas", "show", id, "--reveal-pii"], sagaIds: [id])
        let audit = try TopicReader(hub: fx.hub).read(topic: fx.topic("ops-audit"), partitions: Array(0..<fx.partitions))
        let record = try JSONDecoder().decode(AccessLog.Entry.self, from: try #require(audit.last?.value))
        #expect(record.by == "operator-li" && record.what == .revealPII && record.sagaIds == [id], "\(record)")
        #expect(audit.last?.headers.string(Envelope.Header.type) == MessageType.opsAudit)
    }
}

extension OpsFixture {
    func topic(_ name: String) -> String { prefix + name }
}
