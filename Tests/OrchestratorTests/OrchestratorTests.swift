import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Orchestrator on Tansu", .serialized)
struct OrchestratorTests {
    @Test("applications run to completion; every command is written once per (saga, step, attempt)", .timeLimit(.minutes(3)))
    func sagasComplete() async throws {
        let hub = try TestHub()
        try hub.ensureTopics()
        let responders = try hub.responders(failFirstAttemptOf: ["tax-registration"])
        defer { responders.close() }
        let orchestrator = try BackgroundOrchestrator(hub.config(instance: "o1"))
        defer { orchestrator.stop() }
        let forms = try TestHub.validApplications(limit: 30)
        try hub.submit(forms, producer: KafkaProducer(config: hub.kafka()))

        let finished = try await finishedSagas(hub: hub, expecting: forms.count, timeout: .seconds(120))
        #expect(orchestrator.failure == nil, "orchestrator failed: \(orchestrator.failure ?? "")")
        #expect(finished.count == forms.count, "finished \(finished.count) of \(forms.count)")
        #expect(finished.values.allSatisfy { $0 == "completed" }, "statuses: \(Set(finished.values))")

        // Exactly once on the command topics, and the scripted outage was retried.
        let commandTopics = try hubAgencies().map { hub.topic("commands.\($0)") }
        let commands = try await readAll(topics: commandTopics, partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(2))
        var seen: [String: Int] = [:]
        for message in commands {
            let key = [message.headers.string(Envelope.Header.sagaId), message.headers.string(Envelope.Header.step),
                       message.headers.string(Envelope.Header.attempt)].map { $0 ?? "?" }.joined(separator: "/")
            seen[key, default: 0] += 1
        }
        #expect(!seen.isEmpty)
        #expect(seen.filter { $0.value > 1 }.isEmpty, "commands written twice: \(seen.filter { $0.value > 1 }.keys.sorted().prefix(5))")
        #expect(seen.keys.contains { $0.hasSuffix("/tax-registration/2") }, "no retry of the failed tax registration")
        // Every command carries W3C trace context; all commands of one saga share its trace id.
        var traces: [String: Set<String>] = [:]
        for message in commands {
            let parent = try #require(message.headers.string(Envelope.Header.traceParent).flatMap(TraceParent.init))
            traces[message.keyString ?? "?", default: []].insert(parent.traceId)
        }
        #expect(traces.count == forms.count && traces.values.allSatisfy { $0.count == 1 })
        #expect(orchestrator.service.stats.deadLetters == 0)
    }

    @Test("免证办: a later saga of the same enterprise gets its e-licence from the licences table", .timeLimit(.minutes(3)))
    func licenceReuse() async throws {
        let hub = try TestHub()
        try hub.ensureTopics()
        let responders = try hub.responders()
        defer { responders.close() }
        let orchestrator = try BackgroundOrchestrator(hub.config(instance: "o1"))
        defer { orchestrator.stop() }
        let opening = try #require(TestHub.validApplications(limit: 50).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        try hub.submit([opening], producer: KafkaProducer(config: hub.kafka()))
        _ = try await finishedSagas(hub: hub, expecting: 1, timeout: .seconds(60))

        let issued = try await readAll(hub.topic("licences"), partitions: hub.partitions, expecting: 1, config: hub.kafka())
        let licence = try #require(issued.first { $0.keyString?.hasSuffix("/business-licence") == true })
        let uscc = try #require(licence.keyString?.split(separator: "/").first.map(String.init))
        #expect(try JSONValue.parse(licence.value!)["data"]?["uscc"]?.stringValue == uscc)

        // The same enterprise now applies for a restaurant permit bundle, naming its USCC.
        guard case .object(var form) = try #require(TestHub.validApplications(limit: 100).first { $0["bundle"]?.stringValue == "restaurant-opening" }),
              case .object(var company) = form["company"] else { Issue.record("seed form shape"); return }
        company["uscc"] = .string(uscc)
        form["company"] = .object(company)
        form["applicationId"] = .string("APP-LICENCE-REUSE")
        try await Task.sleep(for: .seconds(1))  // the table reads the licences topic on its own thread
        try hub.submit([.object(form)], producer: KafkaProducer(config: hub.kafka()))
        let states = try await readAll(hub.topic("saga-state"), partitions: hub.partitions, expecting: .max, config: hub.kafka(),
                                       timeout: .seconds(20), until: { $0.contains { $0.keyString == "APP-LICENCE-REUSE" } })
        let record = try #require(states.last { $0.keyString == "APP-LICENCE-REUSE" })
        let state = try SagaStateCodec.decode(record.value!)
        #expect(state.external.contains(.string(uscc)), "the saga did not receive the held business licence")
    }

    @Test("operators: get, list, a refused command, and skip of a step in the 办不成事 queue that lets the saga finish", .timeLimit(.minutes(3)))
    func operatorRequests() async throws {
        let hub = try TestHub()
        try hub.ensureTopics()
        let responders = try hub.responders(reject: ["social-security"])
        defer { responders.close() }
        let orchestrator = try BackgroundOrchestrator(hub.config(instance: "o1"))
        defer { orchestrator.stop() }
        let form = try #require(TestHub.validApplications(limit: 50).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        let sagaId = try #require(form["applicationId"]?.stringValue)
        let producer = try KafkaProducer(config: hub.kafka())
        try hub.submit([form], producer: producer)

        // Social security refuses; its policy is `manual`, so the saga waits in the 办不成事 queue.
        var stuck = false
        for n in 0..<60 where !stuck {
            let reply = try await hub.ops(OpsRequest(requestId: "get-\(n)", by: "operator-zhang", action: .get, sagaId: sagaId), producer: producer)
            if reply.ok, let saga = reply.sagas?.first {
                let bundle = try #require(orchestrator.service.bundle(saga.bundleId, version: saga.bundleVersion))
                let i = try #require(bundle.stepIndex(of: "social-security"))
                stuck = saga.steps[i].status == .failed && saga.status == .manual
            }
            if !stuck { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(stuck, "the saga never opened a manual case for social-security")

        let partition = try #require(orchestrator.service.partition(of: sagaId))
        let list = try await hub.ops(OpsRequest(requestId: "list-1", by: "operator-zhang", action: .list,
                                                filter: SagaFilter(status: [.manual])), partition: partition, producer: producer)
        #expect(list.ok && list.partition == partition && list.sagas?.map(\.sagaId) == [sagaId])

        let wrong = try await hub.ops(OpsRequest(requestId: "resume-1", by: "operator-zhang", action: .resume, sagaId: sagaId), producer: producer)
        #expect(!wrong.ok && wrong.error != nil, "resuming a saga that is not paused was accepted")

        let skip = try await hub.ops(OpsRequest(requestId: "skip-1", by: "operator-zhang", action: .skip, sagaId: sagaId,
                                                step: "social-security", reason: "registered at the counter"), producer: producer)
        #expect(skip.ok, "skip refused: \(skip.error ?? "")")
        let finished = try await finishedSagas(hub: hub, expecting: 1, timeout: .seconds(60))
        #expect(finished[sagaId] == "completed")
        let trail = try await auditTrail(hub: hub, sagaId: sagaId)
        #expect(trail.contains { $0.hasPrefix("\"stepSkipped\" \"social-security\"") })
        let skipEvent = try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max, config: hub.kafka(),
                                          timeout: .seconds(2))
            .first { $0.headers.string(Envelope.Header.type) == MessageType.sagaAudit("stepSkipped") }
        #expect(try JSONValue.parse(try #require(skipEvent?.value))["by"]?.stringValue == "operator-zhang", "the audit trail lacks the operator")
    }

    @Test("a restarted instance restores its sagas from saga-state and finishes them", .timeLimit(.minutes(3)))
    func restoreAfterRestart() async throws {
        let hub = try TestHub()
        try hub.ensureTopics()
        let forms = try TestHub.validApplications(limit: 20)
        // Phase 1: no responders, so every saga stops at its first step.
        let first = try BackgroundOrchestrator(hub.config(instance: "o1"))
        try hub.submit(forms, producer: KafkaProducer(config: hub.kafka()))
        let deadline = ContinuousClock.now + .seconds(60)
        while first.service.stats.ownedSagas < forms.count && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(first.service.stats.ownedSagas == forms.count)
        first.stop()

        // Phase 2: a new process (same instance id) restores them; responders answer.
        let responders = try hub.responders()
        defer { responders.close() }
        let second = try BackgroundOrchestrator(hub.config(instance: "o1"))
        defer { second.stop() }
        let finished = try await finishedSagas(hub: hub, expecting: forms.count, timeout: .seconds(120))
        #expect(finished.count == forms.count && finished.values.allSatisfy { $0 == "completed" })
        #expect(second.service.stats.restoredSagas == forms.count, "restored \(second.service.stats.restoredSagas)")
    }

    @Test("bad messages on every input topic go to the DLQ with their reason; good ones still complete", .timeLimit(.minutes(3)))
    func deadLetters() async throws {
        let hub = try TestHub()
        try hub.ensureTopics()
        let responders = try hub.responders()
        defer { responders.close() }
        let orchestrator = try BackgroundOrchestrator(hub.config(instance: "o1"))
        defer { orchestrator.stop() }
        let producer = try KafkaProducer(config: hub.kafka())
        let now = hub.clock.now().date
        let agencies = try hubAgencies()
        let inputs: [(topic: String, source: String, type: String)] =
            [("applications", "/frontdesk/test", MessageType.applicationSubmitted), ("ops", "/yishi/ctl/test", MessageType.opsRequest)]
            + agencies.map { ("events.\($0)", "/yishi/adapters/\($0)", MessageType.stepSucceeded) }
        var expected: [String: Set<String>] = [:]
        for input in inputs {
            let topic = hub.topic(input.topic)
            let good = Envelope(source: input.source, type: input.type, time: now, subject: "bad")
            func send(_ headers: [KafkaHeader], _ value: String, _ errorClass: String) throws {
                try producer.enqueue(ProducerRecord(topic: topic, key: "bad-\(errorClass)", value: Data(value.utf8), headers: headers))
                expected[topic, default: []].insert(errorClass)
            }
            try send(good.headers, "{not json", "not-json")
            try send(good.headers.filter { $0.name != Envelope.Header.type }, "{}", "missing-header")
            var unknown = good; unknown.type = "cn.gov.yishi.nonsense"
            try send(unknown.headers, "{}", "unknown-type")
            try send(good.headers, #"{"unexpected": true}"#, "schema")
            var wrongSource = good; wrongSource.source = "/somebody/else"
            try send(wrongSource.headers, "{}", "wrong-source")
        }
        try producer.flush()
        let forms = try TestHub.validApplications(limit: 3)
        try hub.submit(forms, producer: producer)

        let finished = try await finishedSagas(hub: hub, expecting: forms.count, timeout: .seconds(90))
        #expect(finished.count == forms.count && finished.values.allSatisfy { $0 == "completed" })
        let total = expected.values.reduce(0) { $0 + $1.count }
        let dead = try await readAll(hub.topic("dlq"), partitions: hub.partitions, expecting: total, config: hub.kafka())
        var got: [String: Set<String>] = [:]
        for message in dead {
            let letter = try DeadLetter(message)
            got[letter.originalTopic, default: []].insert(letter.errorClass)
            #expect(letter.consumerGroup == hub.prefix + "orchestrator")
            #expect(!letter.errorMessage.isEmpty)
            #expect(message.keyString == "bad-\(letter.errorClass)", "the DLQ keeps the original key")
        }
        #expect(dead.count == total, "DLQ has \(dead.count) of \(total)")
        #expect(got == expected)
    }
}
