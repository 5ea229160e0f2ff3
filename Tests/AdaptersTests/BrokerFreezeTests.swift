import Foundation
import Testing
import YishiTestSupport

/// The issue's broker freeze: Tansu SIGSTOPped for 20 s, then SIGCONTed, under a hub of
/// separate processes with sagas in flight. Before, the orchestrator and the bank adapter
/// aborted a batch every 30 s for minutes ("requires epoch bump", then "Failed to acquire
/// transactional PID … retrying") until someone restarted them.
@Suite("A broker freeze under the multi-process hub", .serialized)
struct BrokerFreezeTests {
    @Test("Tansu frozen 20 s mid-run: the hub resumes by itself, every saga completes, no effect twice, nothing in the DLQ",
          .timeLimit(.minutes(4)))
    func freeze() async throws {
        guard let pidText = ProcessInfo.processInfo.environment["YISHI_BROKER_PID"], let brokerPid = Int32(pidText) else {
            throw SetupError("YISHI_BROKER_PID is not set: run the suite with scripts/with-broker.sh (make test)")
        }
        // 1 working hour = 10 s, as in the end-to-end test; the freeze is 2 working hours.
        let hub = try await ProcessHub(name: "freeze", bootstrap: try Broker.bootstrap, applications: 40)
        defer { hub.stop() }

        // Sagas in flight (the clock starts 8 s in), then the freeze.
        try await eventually(every: .milliseconds(200), timeout: .seconds(60), "sagas moving before the freeze") { hub.events > 100 }
        try await Task.sleep(for: .seconds(3))
        let unfinishedAtFreeze = hub.unfinished
        #expect(unfinishedAtFreeze > 0, "every saga finished before the freeze: the test froze nothing")
        #expect(kill(-brokerPid, SIGSTOP) == 0, "SIGSTOP to the broker's process group \(brokerPid)")
        try await Task.sleep(for: .seconds(20))
        let atContinue = hub.events
        #expect(kill(-brokerPid, SIGCONT) == 0)
        let continued = ContinuousClock.now
        let finishedAtContinue = hub.finished
        // Resumed: the hub moves sagas again (20 audit events past the freeze; a few may be
        // commits that were under way when the broker stopped), and a saga finishes.
        try await eventually(every: .milliseconds(100), timeout: .seconds(90), "sagas move after SIGCONT") { hub.events >= atContinue + 20 }
        let resume = ContinuousClock.now - continued
        try await eventually(every: .milliseconds(100), timeout: .seconds(90), "a saga finishes after SIGCONT") { hub.finished > finishedAtContinue }
        let firstFinish = ContinuousClock.now - continued
        print("broker freeze: \(unfinishedAtFreeze) sagas in flight; after SIGCONT the hub moved sagas again within "
              + "\(String(format: "%.1f", resume.seconds)) s and finished one within \(String(format: "%.1f", firstFinish.seconds)) s")
        #expect(resume < .seconds(30), "the hub took \(resume) to resume after SIGCONT")

        try await hub.verify(after: "freeze")
    }
}
