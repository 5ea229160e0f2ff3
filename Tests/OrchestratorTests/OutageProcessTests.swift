import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// Issue 10, must show 3: the orchestrator process is stopped for more than two working hours
/// of virtual time while name reservations are out, then started again. Every overdue timeout
/// fires once, late, at the instant the restarted hub acts; the one retry it leads to gets its
/// full timeout from then; every saga completes.
@Suite("Orchestrator process on Tansu: downtime", .serialized)
struct OutageProcessTests {
    /// Audit events of every saga, decoded, in order per saga.
    func auditEvents(_ hub: TestHub) async throws -> [String: [AuditEvent]] {
        var out: [String: [AuditEvent]] = [:]
        for message in try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(3))
        where message.headers.string(Envelope.Header.type)?.hasPrefix(MessageType.sagaAudit("")) == true {
            if let e = try? JSONDecoder().decode(AuditEvent.self, from: message.value ?? Data()) { out[e.sagaId, default: []].append(e) }
        }
        return out
    }

    @Test("orchestrator down from ~09:05 to 11:45 with name reservations out: one late timeout and one retry per saga, all complete", .timeLimit(.minutes(3)))
    func outageBurnsOneRetry() async throws {
        // 20 virtual seconds per real second while it runs: the 30-minute name-reservation
        // timeout is 90 s real, so nothing times out before the stop.
        let hub = try TestHub(partitions: 3, speed: 20)
        try hub.ensureTopics()
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent(hub.prefix + "logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let count = 30
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: count, tag: "OUTAGE")
        let ids = Set(forms.compactMap { $0["applicationId"]?.stringValue })

        // Phase 1: the orchestrator sends every name reservation; no department answers yet.
        let first = try orchestratorProcess(hub: hub, instance: "o1", logDirectory: logs)
        try hub.submit(forms, producer: KafkaProducer(config: hub.kafka()))
        let sent = try await readAll(hub.topic("commands.business-registration"), partitions: hub.partitions, expecting: count,
                                     config: hub.kafka(), timeout: .seconds(60))
        #expect(sent.count == count, "name reservations sent: \(sent.count)\n\(first.output.suffix(2000))")
        first.terminate()
        let down = hub.clock.now()
        #expect(down < Instant(rfc3339: "2026-03-02T09:30:00+08:00")!, "phase 1 ran past the first timeouts (\(down))")

        // Downtime: the virtual clock moves on to 11:45 (more than two working hours) while
        // nothing runs; then the same instance starts again, on a clock continuing from there.
        let back = Instant(rfc3339: "2026-03-02T11:45:00+08:00")!
        let later = HubClock(start: back, speed: 20, wallStart: Date())
        let second = try orchestratorProcess(hub: hub, instance: "o1", logDirectory: logs, clock: later)
        defer { second.terminate() }
        // The department's gateway was down too: its answers come only after the hub is back and
        // has fired the overdue timeouts (so nothing answered is waiting when it restarts).
        let retried = try await readAll(hub.topic("commands.business-registration"), partitions: hub.partitions, expecting: 2 * count,
                                        config: hub.kafka(), timeout: .seconds(60))
        #expect(retried.count == 2 * count, "commands after the restart: \(retried.count)\n\(second.output.suffix(2000))")
        let responders = try ScriptedResponders(config: hub.kafka(), prefix: hub.prefix,
                                                catalogues: CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")),
                                                now: { later.now().date })
        defer { responders.close() }

        let finished = try await finishedSagas(hub: hub, expecting: count, timeout: .seconds(90))
        #expect(finished.count == count, "finished \(finished.count) of \(count)")
        #expect(finished.values.allSatisfy { $0 == "completed" }, "statuses: \(Set(finished.values))")

        let trails = try await auditEvents(hub)
        for id in ids.sorted() {
            let events = trails[id] ?? []
            let timeouts = events.filter { $0.kind == .stepTimedOut }
            let reservations = events.filter { $0.kind == .stepDispatched && $0.step == "name-reservation" }
            #expect(timeouts.count == 1 && timeouts.first?.step == "name-reservation",
                    "\(id): timeouts \(timeouts.map { "\($0.step ?? "?")#\($0.attempt ?? 0) at \($0.at)" })")
            #expect(reservations.map(\.attempt) == [1, 2], "\(id): name reservations sent \(reservations.map { $0.attempt ?? 0 })")
            // The late timeout is recorded when the hub acted, the retry sent after it.
            if let t = timeouts.first { #expect(t.at >= back, "\(id): timeout recorded at \(t.at), before the restart") }
            if reservations.count == 2 { #expect(reservations[1].at >= back, "\(id): retry sent at \(reservations[1].at)") }
        }
    }
}
