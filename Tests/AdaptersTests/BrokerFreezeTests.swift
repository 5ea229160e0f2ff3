import DepartmentService
import Departments
import Foundation
import FrontDesk
import Messaging
import SagaEngine
import Testing
import YishiKafka
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
        let prefix = uniqueName("freeze") + "."
        var connection = HubConnection(bootstrap: try Broker.bootstrap)
        connection.prefix = prefix
        connection.partitions = 3
        let calendar = try BusinessCalendar.load(repoRoot.appendingPathComponent("seeds/calendar/cn-mainland.json"))
        // 1 working hour = 10 s, as in the end-to-end test; the freeze is 2 working hours.
        let start = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        connection.clock = HubClock(start: start, speed: 360, wallStart: Date().addingTimeInterval(8), workingHours: calendar)
        let admin = try KafkaAdmin(config: connection.clientConfig(clientId: "freeze-admin"))
        try await admin.ensureTopics(HubTopics.all(prefix: prefix, partitions: connection.partitions))

        let work = FileManager.default.temporaryDirectory.appendingPathComponent(prefix + "run")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let service = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment
            .merging(["YISHI_SESSION_TIMEOUT_MS": "6000"]) { _, new in new })
        let clockArgs = ["--clock-start", start.description, "--clock-speed", "360", "--clock-working-hours", "cn-mainland",
                         "--clock-wall-start", String(Int64(connection.clock.wallStart.timeIntervalSince1970 * 1000))]
        let kafkaArgs = ["--bootstrap", connection.bootstrap, "--prefix", prefix, "--partitions", "3"]
        var processes: [YishiProcess] = []
        defer { for p in processes { p.terminate() } }
        processes.append(try YishiProcess("orchestrator", ["orchestrator", "run", "--instance", "o1", "--group", prefix + "orchestrator",
                                                         "--session-timeout-ms", "6000"] + kafkaArgs + clockArgs, command: service, logDirectory: work))
        for agency in Agency.allCases {
            processes.append(try YishiProcess("adapter." + agency.rawValue, ["adapter", "run", "--agency", agency.rawValue, "--instance", "a1"]
                                              + kafkaArgs + clockArgs, command: service, logDirectory: work))
            processes.append(try YishiProcess("dept." + agency.rawValue, ["department", "run", "--agency", agency.rawValue,
                                                                         "--state", work.appendingPathComponent(agency.rawValue + ".json").path]
                                              + kafkaArgs + clockArgs, command: service, logDirectory: work))
        }

        let all = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        let forms = Array(all.prefix(40))
        let expectations = try Expectation.load(manifest: repoRoot.appendingPathComponent("seeds/applications/manifest.json"))
        let ids = Set(forms.compactMap { $0["applicationId"]?.stringValue })
        let desk = try FrontDesk(connection: connection, desk: "freeze", calendar: calendar, supplementDelayMinutes: 30,
                                 log: JSONLog(component: "frontdesk", minimum: .error))
        defer { desk.stop() }
        try desk.watch()
        desk.submit(forms, from: start, everyMs: 30_000)
        func events() -> Int { desk.sagas.values.reduce(0) { $0 + $1.events.count } }

        // Sagas in flight (the clock starts 8 s in), then the freeze.
        try await eventually(every: .milliseconds(200), timeout: .seconds(60), "sagas moving before the freeze") { events() > 100 }
        try await Task.sleep(for: .seconds(3))
        let unfinishedAtFreeze = ids.filter { desk.sagas[$0]?.finished == nil }.count
        #expect(unfinishedAtFreeze > 0, "every saga finished before the freeze: the test froze nothing")
        #expect(kill(-brokerPid, SIGSTOP) == 0, "SIGSTOP to the broker's process group \(brokerPid)")
        try await Task.sleep(for: .seconds(20))
        let atContinue = events()
        #expect(kill(-brokerPid, SIGCONT) == 0)
        let continued = ContinuousClock.now
        let finishedAtContinue = desk.sagas.values.filter { $0.finished != nil }.count
        // Resumed: the hub moves sagas again (20 audit events past the freeze; a few may be
        // commits that were under way when the broker stopped), and a saga finishes.
        try await eventually(every: .milliseconds(100), timeout: .seconds(90), "sagas move after SIGCONT") { events() >= atContinue + 20 }
        let resume = ContinuousClock.now - continued
        try await eventually(every: .milliseconds(100), timeout: .seconds(90), "a saga finishes after SIGCONT") {
            desk.sagas.values.filter { $0.finished != nil }.count > finishedAtContinue
        }
        let firstFinish = ContinuousClock.now - continued
        print("broker freeze: \(unfinishedAtFreeze) sagas in flight; after SIGCONT the hub moved sagas again within "
              + "\(String(format: "%.1f", resume.seconds)) s and finished one within \(String(format: "%.1f", firstFinish.seconds)) s")
        #expect(resume < .seconds(30), "the hub took \(resume) to resume after SIGCONT")

        let finished = await Task.detached { desk.waitForAll(ids, timeout: .seconds(120)) }.value
        let trails = desk.sagas.filter { ids.contains($0.key) }
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let report = OutcomeReport(trails: trails, expectations: expectations, library: library, calendar: calendar)
        #expect(finished, "not finished: \(ids.subtracting(trails.filter { $0.value.finished != nil }.keys).sorted().prefix(10))\n\(report.render())")
        // The freeze must not turn into exhausted retries: every valid application completes.
        #expect(report.validNotCompleted.isEmpty,
                "\(report.render())\n\(report.validNotCompleted.compactMap { trails[$0] }.map { OutcomeReport.timeline($0, calendar: calendar) }.joined(separator: "\n"))")

        // Nothing exited: the hub recovered by itself, no supervisor restarted anything.
        for p in processes {
            #expect(p.process.isRunning, "\(p.name) exited:\n\(p.output.suffix(2000))")
        }
        // Every transaction that librdkafka reported failed (e.g. "requires epoch bump", "Failed to
        // acquire transactional PID") got a named reaction in the same process's log.
        for p in processes where p.output.contains("TXNERR") || p.output.contains("Failed to acquire transactional PID") {
            #expect(p.output.contains("\"msg\":\"transaction\""), "\(p.name): a failed transaction without a warn line naming the reaction")
        }

        // Nothing in the DLQ.
        let letters = try await readAll(prefix + "dlq", partitions: connection.partitions, expecting: 1,
                                        config: connection.clientConfig(clientId: "freeze-dlq"), timeout: .seconds(3))
        #expect(letters.isEmpty, "dead letters: \(letters.prefix(3).map { $0.headers.string(DeadLetter.Header.errorMessage) ?? "?" })")

        // The departments' ledgers: exactly one effect per (saga, step, kind), no business key twice.
        for p in processes where p.name.hasPrefix("dept.") { p.terminate() }
        let reference = try ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))
        var effects: [LedgerEffect] = []
        for agency in Agency.allCases {
            effects += try DepartmentService.ledger(in: work.appendingPathComponent(agency.rawValue + ".json"),
                                                    endpoint: makeDepartment(agency, reference: reference, preset: .default, seed: 2026))
        }
        let perStep = Dictionary(grouping: effects) { "\($0.sagaId)/\($0.step)/\($0.kind)/\($0.data["SEAL_TYPE"] ?? "")" }.filter { $0.value.count > 1 }
        let perKey = Dictionary(grouping: effects) { "\($0.agency.rawValue)/\($0.kind)/\($0.key)" }.filter { $0.value.count > 1 }
        #expect(perStep.isEmpty, "duplicate effects: \(perStep.keys.sorted().prefix(5))")
        #expect(perKey.isEmpty, "duplicate business keys: \(perKey.keys.sorted().prefix(5))")
        let completed = Set(trails.filter { $0.value.finished?.status == "completed" }.keys)
        #expect(Set(effects.filter { $0.kind == "account-opened" }.map(\.sagaId)) == completed)
    }
}
