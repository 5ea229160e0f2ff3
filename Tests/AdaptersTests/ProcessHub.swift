import DepartmentService
import Departments
import Foundation
import FrontDesk
import Messaging
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// The hub as thirteen `yishi` processes (orchestrator, six adapters, six department simulators —
/// one per `adapters/*/catalogue.json`, housing-fund's simulator the configurable one —
/// each with its own log under `work`) and an in-process front desk submitting the first
/// `applications` seed forms, one every 30 s of hub time; 1 working hour = 10 s of wall time, and
/// the clock starts 8 s after `init` so that every group has formed. The broker fault tests
/// (freeze, kill and restart) run it and share its checks (`verify`).
final class ProcessHub {
    let prefix: String
    var connection: HubConnection
    let calendar: BusinessCalendar
    let work: URL
    let desk: FrontDesk
    /// The application ids submitted.
    let ids: Set<String>
    private(set) var processes: [YishiProcess] = []
    /// Every agency with a catalogue (`adapters/*/catalogue.json`), housing-fund included.
    let agencies: [Agency]

    /// `name`: the test's topic-prefix stem; `bootstrap`: the broker every process uses.
    init(name: String, bootstrap: String, applications: Int) async throws {
        prefix = uniqueName(name) + "."
        connection = HubConnection(bootstrap: bootstrap)
        connection.prefix = prefix
        connection.partitions = 3
        calendar = try BusinessCalendar.load(repoRoot.appendingPathComponent("seeds/calendar/cn-mainland.json"))
        let start = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        connection.clock = HubClock(start: start, speed: 360, wallStart: Date().addingTimeInterval(8), workingHours: calendar)
        let admin = try KafkaAdmin(config: connection.clientConfig(clientId: name + "-admin"))
        agencies = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")).ids.map { Agency($0) }
        try await admin.ensureTopics(HubTopics.all(prefix: prefix, partitions: connection.partitions, agencies: agencies.map(\.rawValue)))

        work = FileManager.default.temporaryDirectory.appendingPathComponent(prefix + "run")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let service = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment
            .merging(["YISHI_SESSION_TIMEOUT_MS": "6000"]) { _, new in new })
        let clockArgs = ["--clock-start", start.description, "--clock-speed", "360", "--clock-working-hours", "cn-mainland",
                         "--clock-wall-start", String(Int64(connection.clock.wallStart.timeIntervalSince1970 * 1000))]
        let kafkaArgs = ["--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "3"]
        processes.append(try YishiProcess("orchestrator", ["orchestrator", "run", "--instance", "o1", "--group", prefix + "orchestrator",
                                                         "--session-timeout-ms", "6000"] + kafkaArgs + clockArgs, command: service, logDirectory: work))
        for agency in agencies {
            processes.append(try YishiProcess("adapter." + agency.rawValue, ["adapter", "run", "--agency", agency.rawValue, "--instance", "a1"]
                                              + kafkaArgs + clockArgs, command: service, logDirectory: work))
            processes.append(try YishiProcess("dept." + agency.rawValue, ["department", "run", "--agency", agency.rawValue,
                                                                         "--state", work.appendingPathComponent(agency.rawValue + ".json").path]
                                              + kafkaArgs + clockArgs, command: service, logDirectory: work))
        }

        let all = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        let forms = Array(all.prefix(applications))
        ids = Set(forms.compactMap { $0["applicationId"]?.stringValue })
        desk = try FrontDesk(connection: connection, desk: name, calendar: calendar, supplementDelayMinutes: 30,
                             log: JSONLog(component: "frontdesk", minimum: .error))
        try desk.watch()
        desk.submit(forms, from: start, everyMs: 30_000)
    }

    deinit { stop() }

    /// Stops the front desk and every process (SIGTERM, waited for).
    func stop() {
        desk.stop()
        for p in processes { p.terminate() }
    }

    /// Audit events the front desk has seen so far, over all sagas.
    var events: Int { desk.sagas.values.reduce(0) { $0 + $1.events.count } }
    /// Sagas that finished so far.
    var finished: Int { desk.sagas.values.filter { $0.finished != nil }.count }
    /// Submitted sagas that have not finished (yet, or not started).
    var unfinished: Int { ids.filter { desk.sagas[$0]?.finished == nil }.count }

    /// After a broker fault: every saga finishes within `timeout`; every valid application
    /// completes; no process exited; every failed transaction librdkafka reported got a named
    /// reaction in its process's log; nothing in the DLQ; in the departments' ledgers exactly one
    /// effect per (saga, step, kind), no business key twice, and one account opened per completed
    /// saga. `what` names the fault in messages.
    func verify(after what: String, timeout: Duration = .seconds(120)) async throws {
        let desk = self.desk, ids = self.ids
        let done = await Task.detached { desk.waitForAll(ids, timeout: timeout) }.value
        let trails = desk.sagas.filter { ids.contains($0.key) }
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let expectations = try Expectation.load(manifest: repoRoot.appendingPathComponent("seeds/applications/manifest.json"))
        let report = OutcomeReport(trails: trails, expectations: expectations, library: library, calendar: calendar)
        #expect(done, "not finished after the \(what): \(ids.subtracting(trails.filter { $0.value.finished != nil }.keys).sorted().prefix(10))\n\(report.render())")
        // The fault must not turn into exhausted retries: every valid application completes.
        #expect(report.validNotCompleted.isEmpty,
                "\(report.render())\n\(report.validNotCompleted.compactMap { trails[$0] }.map { OutcomeReport.timeline($0, calendar: calendar) }.joined(separator: "\n"))")

        // Nothing exited: the hub recovered by itself, no supervisor restarted anything.
        for p in processes {
            #expect(p.process.isRunning, "\(p.name) exited after the \(what):\n\(p.output.suffix(2000))")
        }
        // Every transaction that librdkafka reported failed (e.g. "requires epoch bump", "Failed to
        // acquire transactional PID") got a named reaction in the same process's log.
        for p in processes where p.output.contains("TXNERR") || p.output.contains("Failed to acquire transactional PID") {
            #expect(p.output.contains("\"msg\":\"transaction\""), "\(p.name): a failed transaction without a warn line naming the reaction")
        }

        // Nothing in the DLQ.
        let letters = try await readAll(prefix + "dlq", partitions: connection.partitions, expecting: 1,
                                        config: connection.clientConfig(clientId: "verify-dlq"), timeout: .seconds(3))
        #expect(letters.isEmpty, "dead letters after the \(what): \(letters.prefix(3).map { $0.headers.string(DeadLetter.Header.errorMessage) ?? "?" })")

        // The departments' ledgers: exactly one effect per (saga, step, kind), no business key twice.
        for p in processes where p.name.hasPrefix("dept.") { p.terminate() }
        let effects = try departmentLedgers(agencies, work: work)
        let perStep = Dictionary(grouping: effects) { "\($0.sagaId)/\($0.step)/\($0.kind)/\($0.data["SEAL_TYPE"] ?? "")" }.filter { $0.value.count > 1 }
        let perKey = Dictionary(grouping: effects) { "\($0.agency.rawValue)/\($0.kind)/\($0.key)" }.filter { $0.value.count > 1 }
        #expect(perStep.isEmpty, "duplicate effects after the \(what): \(perStep.keys.sorted().prefix(5))")
        #expect(perKey.isEmpty, "duplicate business keys after the \(what): \(perKey.keys.sorted().prefix(5))")
        let completed = Set(trails.filter { $0.value.finished?.status == "completed" }.keys)
        #expect(Set(effects.filter { $0.kind == "account-opened" }.map(\.sagaId)) == completed)
    }
}

/// The hub's agencies: every `adapters/*/catalogue.json` (housing-fund's simulator is the configurable one).
func hubAgencies() throws -> [Agency] {
    try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")).ids.map { Agency($0) }
}

/// Every department's ledger (exactly-once effects) from its `--state` file `<work>/<agency>.json`,
/// read with the endpoint its process ran (the Swift model or the configurable simulator).
func departmentLedgers(_ agencies: [Agency], work: URL) throws -> [LedgerEffect] {
    let reference = try ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))
    var effects: [LedgerEffect] = []
    for agency in agencies {
        effects += try DepartmentService.ledger(in: work.appendingPathComponent(agency.rawValue + ".json"),
                                                endpoint: departmentEndpoint(agency, adapters: repoRoot.appendingPathComponent("adapters"),
                                                                             reference: reference, preset: .default, seed: 2026))
    }
    return effects
}
