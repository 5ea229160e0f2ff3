import DepartmentService
import Departments
import Foundation
import FrontDesk
import HubTestKit
import Messaging
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// Issue 10, must show 4: one record must never stop a process. The hub as separate processes
/// (orchestrator, five adapters, five departments) plus a front desk: an operator asks for a
/// `sagas list` larger than one ops-replies record, and every input topic of every service gets
/// poison (garbage bytes, wrong headers, overflow numbers, a near-1 MB value, an impossible
/// adapter context); the bank department even starts from a garbage state file. Afterwards every
/// process still runs (same pid, never restarted) and a saga submitted after the poison completes.
@Suite("Poison records on every input of every service, as processes on Tansu", .serialized)
struct PoisonProcessTests {
    @Test("oversized sagas list + poison on every input topic: every process still runs, a later saga completes",
          .timeLimit(.minutes(4)))
    func poisonEverywhere() async throws {
        let prefix = uniqueName("poison") + "."
        let bootstrap = try Broker.bootstrap
        var connection = HubConnection(bootstrap: bootstrap)
        connection.prefix = prefix
        connection.partitions = 2
        let calendar = try BusinessCalendar.load(repoRoot.appendingPathComponent("seeds/calendar/cn-mainland.json"))
        let start = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        connection.clock = HubClock(start: start, speed: 360, wallStart: Date().addingTimeInterval(6), workingHours: calendar)
        try await KafkaAdmin(config: connection.clientConfig(clientId: "poison-admin"))
            .ensureTopics(HubTopics.all(prefix: prefix, partitions: connection.partitions, agencies: try hubAgencies().map(\.rawValue)))

        let work = FileManager.default.temporaryDirectory.appendingPathComponent(prefix + "run")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        // The bank's books are unreadable before it even starts.
        try Data("{\"state\": \"not a checkpoint".utf8).write(to: work.appendingPathComponent("bank.json"))
        let service = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment
            .merging(["YISHI_SESSION_TIMEOUT_MS": "6000"]) { _, new in new })
        let clockArgs = ["--clock-start", start.description, "--clock-speed", "360", "--clock-working-hours", "cn-mainland",
                         "--clock-wall-start", String(Int64(connection.clock.wallStart.timeIntervalSince1970 * 1000))]
        let kafkaArgs = ["--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "2"]
        // The orchestrator writes records of at most 16,000 bytes: a list of the sagas below does not fit one reply.
        let limit = 16_000
        var processes: [YishiProcess] = []
        defer { for p in processes { p.terminate() } }
        processes.append(try YishiProcess("orchestrator", ["orchestrator", "run", "--instance", "o1", "--session-timeout-ms", "6000",
                                                         "--kafka-property", "message.max.bytes=\(limit)"] + kafkaArgs + clockArgs,
                                          command: service, logDirectory: work))
        for agency in try hubAgencies() {
            processes.append(try YishiProcess("adapter." + agency.rawValue, ["adapter", "run", "--agency", agency.rawValue, "--instance", "a1"]
                                              + kafkaArgs + clockArgs, command: service, logDirectory: work))
            processes.append(try YishiProcess("dept." + agency.rawValue, ["department", "run", "--agency", agency.rawValue, "--profile", "no-faults",
                                                                         "--state", work.appendingPathComponent(agency.rawValue + ".json").path]
                                              + kafkaArgs + clockArgs, command: service, logDirectory: work))
        }
        let pids = processes.map { $0.process.processIdentifier }
        let desk = try FrontDesk(connection: connection, desk: "poison", calendar: calendar, log: JSONLog(component: "frontdesk", minimum: .error))
        defer { desk.stop() }
        try desk.watch()

        // Sagas for the operator to list (each state is a few kB: together far above one 16,000-byte reply).
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: 26, tag: "POISON")
        let early = Array(forms.prefix(24)), later = forms[24]
        // An application whose contributions overflow Int when summed: the registry must refuse it, naming the field.
        guard case .object(var overflow) = forms[25], case .array(var holders)? = overflow["shareholders"], case .object(var holder)? = holders.first,
              case .object(var company)? = overflow["company"] else { throw SetupError("seed form") }
        holder["contribution"] = .number(5_000_000_000_000_000_000)
        holders = [.object(holder), .object(holder)]
        overflow["shareholders"] = .array(holders)
        company["registeredCapital"] = .number(1_000_000)
        overflow["company"] = .object(company)
        let overflowId = try #require(overflow["applicationId"]?.stringValue)
        desk.submit(early + [.object(overflow)], from: start, everyMs: 60_000)

        // Poison on every input topic of every service.
        let producer = try KafkaProducer(config: Broker.config(["partitioner": "murmur2_random"]))
        var poisoned: [String] = []
        func poison(_ topic: String, source: String, type: String) throws {
            let t = prefix + topic
            let good = Envelope(source: source, type: type, time: connection.clock.now().date, subject: "POISON").headers
            var sent: [ProducerRecord] = [
                ProducerRecord(topic: t, key: "POISON-garbage", value: Data([0xff, 0xfe, 0x00, 0x7b, 0x22])),
                ProducerRecord(topic: t, key: "POISON-headers", value: Data("{}".utf8),
                               headers: [KafkaHeader("Content-Type", "application/json"), KafkaHeader("ce_specversion", "0.3"),
                                         KafkaHeader("ce_type", Data([0xff, 0xfe]))]),
                ProducerRecord(topic: t, key: "POISON-numbers", value: Data(#"""
                    {"sagaId": "POISON-numbers", "step": "registration", "attempt": 1e300, "requestId": "x", "seq": 99999999999999999999,
                     "at": -9223372036854775809, "registeredCapital": 5000000000000000000, "outputs": {"n": 1e308}, "deadline": 1e19}
                    """#.utf8), headers: good),
            ]
            // Near 1 MB: accepted by a producer with librdkafka's default limit, above any copy's room.
            let empty = RecordSizeLimit.wireSize(ProducerRecord(topic: t, key: "POISON-huge", value: Data(), headers: good))
            sent.append(ProducerRecord(topic: t, key: "POISON-huge",
                                       value: Data(repeating: UInt8(ascii: "7"), count: RecordSizeLimit.librdkafkaDefault - empty - 10), headers: good))
            for record in sent { try producer.enqueue(record) }
            poisoned.append(t)
        }
        for agency in try hubAgencies().map(\.rawValue) {
            try poison("events.\(agency)", source: "/yishi/adapters/\(agency)", type: MessageType.stepSucceeded)
            try poison("commands.\(agency)", source: "/yishi/orchestrator/o1", type: MessageType.stepRequested)
            try poison("dept.\(agency).requests", source: "/yishi/adapters/\(agency)", type: MessageType.native(agency: agency, message: "X.request"))
            try poison("dept.\(agency).replies", source: "/dept/\(agency)", type: MessageType.native(agency: agency, message: "X.reply"))
        }
        // A well-formed registry reply whose echoed adapter context names a native call that does not exist.
        let context = #"{"command": {"action": "reserve-name", "sagaId": "POISON-context", "step": "name-reservation", "attempt": 1, "#
            + #""requestId": "POISON-context/name-reservation/r1"}, "call": -1, "replies": {}}"#
        let reply = Envelope(source: "/dept/business-registration", type: MessageType.native(agency: "business-registration", message: "MCSB.reply"),
                             time: connection.clock.now().date, subject: "POISON-context").headers + [KafkaHeader("yishi-adapter-context", context)]
        try producer.enqueue(ProducerRecord(topic: prefix + "dept.business-registration.replies", key: "POISON-context",
                                            value: Data(#"{"qqlsh": "POISON-context/name-reservation/r1/MCSB", "ywlx": "MCSB", "wbywh": "POISON-context", "wbhjh": "name-reservation", "jgdm": "00", "jgms": "成功"}"#.utf8),
                                            headers: reply))
        try poison("applications", source: "/frontdesk/test", type: MessageType.applicationSubmitted)
        try poison("ops", source: "/yishi/ctl/test", type: MessageType.opsRequest)
        try poison("saga-events", source: "/yishi/orchestrator/o1", type: MessageType.sagaAudit("submitted"))
        try poison("licences", source: "/yishi/orchestrator/o1", type: MessageType.licenceIssued)
        try producer.flush()

        // The operator asks for every saga at once: the CLI follows the orchestrator's pages.
        var env = ProcessInfo.processInfo.environment
        env["YISHI_BOOTSTRAP"] = bootstrap
        env["YISHI_PREFIX"] = prefix
        env["YISHI_TIMEOUT"] = "15"
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: env)
        let earlyIds = Set(early.compactMap { $0["applicationId"]?.stringValue })
        var listed: [String] = []
        var lastAnswer = ""
        do { try await eventually(every: .seconds(1), timeout: .seconds(60), "all \(earlyIds.count) early sagas listed") {
            let result = try yishi.run(["sagas", "list", "--limit", "1000", "--json", "--source", "live"])
            lastAnswer = "exit \(result.status): " + String(result.out.prefix(300)) + String(result.err.prefix(600))
            guard result.status == 0, let page = try? JSONValue.parse(result.out) else { return false }
            listed = page["sagas"]?.arrayValue?.compactMap { $0["sagaId"]?.stringValue } ?? []
            return earlyIds.isSubset(of: Set(listed))
        } } catch {
            Issue.record("the CLI's last answer: \(lastAnswer); listed \(listed.count)")
            throw error
        }
        #expect(listed.count == Set(listed).count, "a saga listed twice across pages")

        // A saga submitted after all that completes.
        let laterId = try #require(later["applicationId"]?.stringValue)
        desk.submit([later], from: connection.clock.now(), everyMs: 60_000)
        let done = await Task.detached { desk.waitForAll([laterId, overflowId], timeout: .seconds(120)) }.value
        let trails = desk.sagas
        #expect(done, "later saga: \(trails[laterId].map { OutcomeReport.timeline($0, calendar: calendar) } ?? "never seen")")
        #expect(trails[laterId]?.finished?.status == "completed")
        let rejection = trails[overflowId]?.rejection
        #expect(rejection?.step == "registration" && rejection?.detail.contains("shareholders[1].contribution") == true,
                "the overflowing contributions were not refused naming the field: \(String(describing: rejection))")

        // Every process is the one started at the beginning, still running.
        for (p, pid) in zip(processes, pids) {
            #expect(p.process.isRunning && p.process.processIdentifier == pid && p.starts == 1,
                    "\(p.name) stopped:\n\(p.output.split(separator: "\n").suffix(15).joined(separator: "\n"))")
        }
        let aside = try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.hasPrefix("bank.json.unreadable-") }
        #expect(aside.count == 1, "the bank's unreadable state file was not kept aside")

        // The consumers that write dead-lettered their poison (cut to fit); the read-only ones logged a skip.
        let dead = try await readAll(prefix + "dlq", partitions: connection.partitions, expecting: .max, config: Broker.config(),
                                     timeout: .seconds(5))
        let letters = dead.compactMap { try? DeadLetter($0) }
        #expect(letters.count == dead.count, "an unreadable dead letter")
        for topic in poisoned where !topic.hasSuffix("saga-events") && !topic.hasSuffix("licences") {
            let here = letters.filter { $0.originalTopic == topic }
            #expect(here.count >= 4, "\(topic): \(here.count) dead letters for 4 poison records")
            #expect(here.contains { $0.truncated.contains("value") }, "\(topic): the near-1 MB record's dead letter was not cut")
        }
        let contextLetter = letters.first { $0.key == Data("POISON-context".utf8) }
        #expect(contextLetter?.errorClass == "unprocessable" && contextLetter?.errorMessage.contains("no call") == true,
                "the impossible adapter context: \(String(describing: contextLetter))")
        let orchestratorLog = processes[0].output
        #expect(orchestratorLog.contains("skipped unreadable licence record"))
    }
}
