import Foundation
import HubTestKit
import Messaging
@testable import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// Kind 1 of issue 10: instants the hub did not choose. The hub acts at its own now: a timer
/// that came due while nothing ran fires once, late, at the instant the hub acts, and every
/// dispatch, timeout and backoff it leads to counts from there. No broker needed.
@Suite struct LateTimerTests {
    let library = try! BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                          catalogues: repoRoot.appendingPathComponent("adapters"),
                                          calendars: repoRoot.appendingPathComponent("seeds/calendar"))

    func at(_ text: String) -> Instant { Instant(rfc3339: text)! }

    /// An enterprise-opening form submitted at `submittedAt`.
    func form(_ id: String, submittedAt: String) throws -> JSONValue {
        let seed = try #require(try SeedApplications.valid(repoRoot: repoRoot).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        guard case .object(var o) = seed else { throw SetupError("seed is not an object") }
        o["applicationId"] = .string(id)
        o["submittedAt"] = .string(submittedAt)
        return .object(o)
    }

    /// Commands and audit events of the batch so far, then commits it.
    func drain(_ host: inout SagaHost) -> [SagaHost.Outbound] {
        let out = host.outbound
        host.commitBatch()
        return out
    }

    @Test("orchestrator down 09:30–11:40: the overdue name-reservation timeout fires once at 11:40, one retry counts its timeout from then, the saga completes, the SLA still counts from 09:00")
    func overdueTimeoutFiresOnceAtNow() throws {
        var host = SagaHost(library: library)
        let id = "APP-20260302-000901"
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form(id, submittedAt: "2026-03-02T09:00:00+08:00"),
                        licences: [:], at: at("2026-03-02T09:00:00+08:00"))
        let first = drain(&host).filter { $0.type == MessageType.stepRequested }
        #expect(first.map(\.step) == ["name-reservation"])
        #expect(first.first?.payload["deadline"]?.doubleValue == Double(at("2026-03-02T09:30:00+08:00").ms))

        // Nothing ran until 11:40; then the loop fires whatever is due, a few times a second, for a minute.
        var now = at("2026-03-02T11:40:00+08:00")
        var outbound: [SagaHost.Outbound] = []
        for _ in 0..<600 {
            _ = try host.fireDueTimers(now: now, limit: 500)
            outbound += drain(&host)
            now = now + 100
        }
        let requests = outbound.filter { $0.type == MessageType.stepRequested }
        #expect(requests.count == 1, "dispatched \(requests.map { "\($0.step ?? "?")#\($0.attempt ?? 0)" })")
        let retry = try #require(requests.first)
        #expect(retry.step == "name-reservation" && retry.attempt == 2)
        let timedOut = outbound.filter { $0.type == MessageType.sagaAudit(AuditEvent.Kind.stepTimedOut.rawValue) }
        #expect(timedOut.count == 1)
        #expect(timedOut.first?.payload["at"]?.doubleValue == Double(at("2026-03-02T11:40:00+08:00").ms), "the late timeout is recorded at the instant the hub acted")
        // The retry went out within the minute after 11:40 and gets its full 30 minutes from then.
        let sentAt = try #require(outbound.first { $0.type == MessageType.sagaAudit(AuditEvent.Kind.stepDispatched.rawValue) }?.payload["at"]?.doubleValue)
        #expect(sentAt >= Double(at("2026-03-02T11:40:00+08:00").ms) && sentAt < Double(at("2026-03-02T11:41:00+08:00").ms))
        let calendar = try #require(library.calendars["cn-mainland"])
        #expect(retry.payload["deadline"]?.doubleValue == Double(calendar.addWorkingTime(Instant(ms: Int64(sentAt)), 30 * 60_000).ms))
        let saga = try #require(host.state(id))
        #expect(saga.status == .running)
        #expect(saga.submittedAt == at("2026-03-02T09:00:00+08:00"))
        #expect(saga.deadline == calendar.addWorkingTime(at("2026-03-02T09:00:00+08:00"), 7 * 3_600_000))

        // The saga can complete: every request is answered.
        var pending = requests
        var t = now
        while let request = pending.first {
            pending.removeFirst()
            let bundle = try #require(library.bundle("enterprise-opening", version: saga.bundleVersion))
            let step = try #require(bundle.steps.first { $0.id == request.step })
            let action = try #require(library.catalogues.agencies[step.agency]?.action(step.action))
            let outputs = Dictionary(uniqueKeysWithValues: action.outputs.map { ($0.name, JSONValue.string("\(id).\($0.name)")) })
            t = t + 60_000
            try host.apply(id, SagaInput(at: t, .stepSucceeded(step: step.id, attempt: request.attempt ?? 0, outputs: outputs)))
            pending += drain(&host).filter { $0.type == MessageType.stepRequested }
        }
        #expect(host.state(id)?.status == .completed)
    }
}

/// The same kind end to end on Tansu: instants in messages are the sender's, never the hub's now.
@Suite("Orchestrator on Tansu: the hub's own clock", .serialized)
struct HubClockTests {
    /// A saga's audit events (decoded), in order.
    func audit(_ hub: TestHub, _ sagaId: String) async throws -> [AuditEvent] {
        try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(3))
            .filter { $0.keyString == sagaId && $0.headers.string(Envelope.Header.type)?.hasPrefix(MessageType.sagaAudit("")) == true }
            .compactMap { try? JSONDecoder().decode(AuditEvent.self, from: $0.value ?? Data()) }
    }

    /// The newest `saga-state` record of a saga.
    func state(_ hub: TestHub, _ sagaId: String) async throws -> SagaState? {
        try await readAll(hub.topic("saga-state"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(3))
            .last { $0.keyString == sagaId }
            .flatMap { try? SagaStateCodec.decode($0.value ?? Data()) }
    }

    @Test("a dead-lettered application replayed two working days later completes; its steps get full timeouts from when they are sent; the SLA counts from submittedAt", .timeLimit(.minutes(3)))
    func replayedDeadLetterRunsNow() async throws {
        // The hub clock is at Wednesday 09:00; the application was handed in on Monday 09:00.
        let hub = try TestHub(start: "2026-03-04T09:00:00+08:00")
        try hub.ensureTopics()
        let responders = try hub.responders()
        defer { responders.close() }
        let orchestrator = try BackgroundOrchestrator(hub.config(instance: "o1"))
        defer { orchestrator.stop() }
        let seed = try #require(try TestHub.validApplications(limit: 50).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        guard case .object(var form) = seed else { throw SetupError("seed is not an object") }
        let id = "APP-20260302-000777"
        form["applicationId"] = .string(id)
        form["submittedAt"] = "2026-03-02T09:00:00+08:00"
        // What `yishi dlq replay` sends: the original record (its Monday ce_time) marked as replayed.
        let monday = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        let envelope = Envelope(source: "/frontdesk/test", type: MessageType.applicationSubmitted, time: monday.date, subject: id)
        var record = envelope.record(topic: hub.topic("applications"), key: id, data: Data(JSONValue.object(form).text().utf8))
        record.headers.append(KafkaHeader(DeadLetter.Header.replayed, hub.topic("dlq") + "[0]@7"))
        let producer = try KafkaProducer(config: hub.kafka())
        _ = try await producer.send(record)

        let finished = try await finishedSagas(hub: hub, expecting: 1, timeout: .seconds(90))
        let trail = try await auditTrail(hub: hub, sagaId: id).joined(separator: "\n")
        #expect(finished[id] == "completed", "status \(finished[id] ?? "none"); trail:\n\(trail)")
        let events = try await audit(hub, id)
        let wednesday = hub.clock.start
        #expect(!events.contains { $0.kind == .stepTimedOut }, "a step timed out")
        for e in events where e.kind == .stepDispatched { #expect(e.at >= wednesday, "\(e.step ?? "?") dispatched at \(e.at), before the hub received it") }
        let saga = try #require(try await state(hub, id))
        #expect(saga.submittedAt == monday, "SLA start \(saga.submittedAt)")
        let calendar = try #require(try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                                           catalogues: repoRoot.appendingPathComponent("adapters"),
                                                           calendars: repoRoot.appendingPathComponent("seeds/calendar")).calendars["cn-mainland"])
        #expect(saga.deadline == calendar.addWorkingTime(monday, 7 * 3_600_000))
        #expect(saga.slaBreached, "a one-day SLA from Monday is breached on Wednesday")
    }

    @Test("department answers whose ce_time is five hours behind do not change the saga's timing", .timeLimit(.minutes(3)))
    func skewedSenderClock() async throws {
        let hub = try TestHub()
        try hub.ensureTopics()
        let clock = hub.clock
        let responders = try ScriptedResponders(config: hub.kafka(), prefix: hub.prefix,
                                                catalogues: CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")),
                                                now: { clock.now().date.addingTimeInterval(-5 * 3600) })
        defer { responders.close() }
        let orchestrator = try BackgroundOrchestrator(hub.config(instance: "o1"))
        defer { orchestrator.stop() }
        let forms = try TestHub.validApplications(limit: 5)
        try hub.submit(forms, producer: KafkaProducer(config: hub.kafka()))
        let finished = try await finishedSagas(hub: hub, expecting: forms.count, timeout: .seconds(90))
        #expect(finished.count == forms.count && finished.values.allSatisfy { $0 == "completed" }, "\(finished)")
        let end = hub.clock.now()
        for form in forms {
            let id = try #require(form["applicationId"]?.stringValue)
            let events = try await audit(hub, id)
            #expect(!events.contains { $0.kind == .stepTimedOut }, "\(id): a step timed out")
            for e in events { #expect(e.at >= hub.clock.start && e.at <= end, "\(id): \(e.kind) at \(e.at), outside the hub's run") }
        }
    }
}
