import Foundation
import HubTestKit
import Messaging
@testable import Orchestrator
import SagaEngine
import Synchronization
import Testing
import YishiTestSupport

/// The orchestrator's log from committed batches: a warning per step timeout and manual case,
/// a periodic summary with the interval's counts. Pure: a saga host and a captured log.
@Suite struct OperationsLogTests {
    let library = try! BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                          catalogues: repoRoot.appendingPathComponent("adapters"),
                                          calendars: repoRoot.appendingPathComponent("seeds/calendar"))

    func form(_ id: String, seed: JSONValue) throws -> JSONValue {
        guard case .object(var o) = seed else { throw SetupError("seed is not an object") }
        o["applicationId"] = .string(id)
        o["submittedAt"] = .string("2026-03-02T09:00:00+08:00")
        return .object(o)
    }

    @Test("step timeouts and retries warned per event (capped per interval), a summary line counts the interval, nothing when idle")
    func warningsAndSummary() throws {
        let lines = Mutex<[JSONValue]>([])
        let log = JSONLog(component: "orchestrator", sink: { line in lines.withLock { $0.append(try! JSONValue.parse(line)) } })
        let operations = OperationsLog(log: log, interval: .zero)
        var host = SagaHost(library: library)
        let start = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        let count = OperationsLog.warningsPerInterval + 5
        let seed = try #require(try SeedApplications.valid(repoRoot: repoRoot).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        for n in 0..<count {
            let id = String(format: "APP-20260302-%06d", n)
            try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form(id, seed: seed), licences: [:], at: start)
        }
        operations.committed(host.outbound, inputs: count, timersFired: 0, deadLetters: 1)
        host.commitBatch()
        // Nobody answers: every first step times out at 09:30 and is retried.
        let fired = try host.fireDueTimers(now: Instant(rfc3339: "2026-03-02T10:00:00+08:00")!, limit: 1000)
        operations.committed(host.outbound, inputs: 0, timersFired: fired, deadLetters: 0)
        host.commitBatch()
        operations.aborted()
        operations.tick(inFlight: { host.sagas.count }, partitions: { 3 })

        let all = lines.withLock { $0 }
        let timeouts = all.filter { $0["msg"] == "step timed out" }
        #expect(timeouts.count == OperationsLog.warningsPerInterval, "one warning per timeout up to the cap")
        #expect(timeouts.allSatisfy { $0["level"] == "warn" && $0["step"] == "name-reservation" && $0["saga"]?.stringValue?.hasPrefix("APP-") == true })
        let summary = try #require(all.first { $0["msg"] == "summary" }, "\(all)")
        #expect(summary["level"] == "info")
        #expect(summary["inputs"] == .string(String(count)) && summary["commits"] == "2" && summary["aborts"] == "1")
        #expect(summary["dead_letters"] == "1" && summary["sagas_started"] == .string(String(count)))
        #expect(summary["step_timeouts"] == .string(String(count)) && summary["retries"] == .string(String(count)))
        #expect(summary["sagas_in_flight"] == .string(String(count)) && summary["warnings_suppressed"] == "5")
        #expect(all.filter { $0["level"] == "info" }.count == 1, "nothing per record at info")

        // An idle interval with nothing in flight says nothing.
        let before = lines.withLock { $0.count }
        operations.tick(inFlight: { 0 }, partitions: { 3 })
        #expect(lines.withLock { $0.count } == before)
    }
}
