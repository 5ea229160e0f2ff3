import Foundation
import Messaging
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// The issue's broker crash: Tansu on durable storage (`s3://` on a local moto S3 server, both
/// started by `scripts/with-broker.sh --storage s3` for this test alone) SIGKILLed under a hub of
/// separate processes with sagas in flight, down for 3 s, then restarted on the same storage and
/// port. The suite's own broker stays on memory storage.
@Suite("A broker crash and restart under the multi-process hub", .serialized)
struct BrokerRestartTests {
    @Test("Tansu SIGKILLed mid-run and restarted on the same s3 storage and port: records kept, the hub resumes by itself, every saga completes, no effect twice, nothing in the DLQ", .timeLimit(.minutes(4)))
    func killAndRestart() async throws {
        let broker = try DurableBroker(repoRoot: repoRoot)
        defer { broker.stop() }
        let hub = try await ProcessHub(name: "restart", bootstrap: broker.bootstrap, applications: 40)
        defer { hub.stop() }

        try await eventually(every: .milliseconds(200), timeout: .seconds(60), "sagas moving before the kill") { hub.events > 100 }
        try await Task.sleep(for: .seconds(3))
        let unfinishedAtKill = hub.unfinished
        #expect(unfinishedAtKill > 0, "every saga finished before the kill: the test crashed nothing")
        // What the front desk had read before the crash: committed audit events, which the
        // restarted broker must still serve.
        let seenBeforeKill = Set(hub.desk.sagas.values.flatMap { $0.events.map(Self.key) })

        let oldPid = broker.pid
        #expect(kill(-oldPid, SIGKILL) == 0, "SIGKILL to the broker's process group \(oldPid)")
        let killed = ContinuousClock.now
        try await Task.sleep(for: .seconds(3))
        let newPid = try broker.restart()
        let back = ContinuousClock.now
        #expect(newPid != oldPid)
        let atRestart = hub.events
        let finishedAtRestart = hub.finished
        // Resumed: the hub moves sagas again (20 audit events past the restart), and a saga finishes.
        try await eventually(every: .milliseconds(100), timeout: .seconds(90), "sagas move after the restart") { hub.events >= atRestart + 20 }
        let resume = ContinuousClock.now - back
        do {
            try await eventually(every: .milliseconds(100), timeout: .seconds(90), "a saga finishes after the restart") { hub.finished > finishedAtRestart }
        } catch {
            // Name what holds the hub: transactions the restarted broker still has open. A
            // transaction Tansu already ended (Aborted/Committed) that still lists records holds
            // those partitions' last stable offset for good: a broker defect, seen once in nine
            // runs here (docs/operations.md, "When the broker hiccups"), recorded as a known issue
            // with its evidence; any other stall fails the test.
            let open = broker.openTransactions()
            if open.contains(where: { $0.contains(": Aborted ") || $0.contains(": Committed ") }) {
                withKnownIssue("Tansu 0.6.0 keeps an ended transaction's records listed after a restart, holding the last stable offset") {
                    Issue.record("transactions Tansu's storage holds open after the restart: \(open)")
                }
                return
            }
            Issue.record("transactions Tansu's storage holds open after the restart: \(open)")
            throw error
        }
        let firstFinish = ContinuousClock.now - back
        print("broker kill -9 and restart (s3 storage): \(unfinishedAtKill) sagas in flight; broker down "
              + "\(String(format: "%.1f", (back - killed).seconds)) s (3 s dead, then start until it answered metadata); "
              + "after the restart the hub moved sagas again within \(String(format: "%.1f", resume.seconds)) s "
              + "and finished one within \(String(format: "%.1f", firstFinish.seconds)) s")
        #expect(resume < .seconds(30), "the hub took \(resume) to resume after the broker restart")

        try await hub.verify(after: "broker restart")
        print("broker restart: transactions Tansu's storage holds open after the run: \(broker.openTransactions())")

        // Durable: every audit event read before the kill is still on saga-events after the restart.
        let records = try await readAll(hub.prefix + "saga-events", partitions: hub.connection.partitions, expecting: .max,
                                        config: hub.connection.clientConfig(clientId: "restart-reread"), timeout: .seconds(30)) {
            Self.keys($0).isSuperset(of: seenBeforeKill)
        }
        let lost = seenBeforeKill.subtracting(Self.keys(records))
        #expect(!seenBeforeKill.isEmpty && lost.isEmpty, "\(lost.count) of \(seenBeforeKill.count) audit events read before the kill are gone: \(lost.sorted().prefix(5))")
    }

    /// An audit event as the front desk identifies it (saga, seq, kind, step, attempt).
    static func key(_ e: AuditEvent) -> String { "\(e.sagaId)/\(e.seq)/\(e.kind.rawValue)/\(e.step ?? "")/\(e.attempt ?? 0)" }

    /// The keys of the audit events among `messages` (other saga-events types are skipped).
    @Sendable static func keys(_ messages: [KafkaMessage]) -> Set<String> {
        let decoder = JSONDecoder()
        return Set(messages.compactMap { m -> String? in
            guard let type = m.headers.string(Envelope.Header.type), type.hasPrefix(MessageType.sagaAuditPrefix),
                  let e = try? decoder.decode(AuditEvent.self, from: m.value ?? Data()) else { return nil }
            return key(e)
        })
    }
}
