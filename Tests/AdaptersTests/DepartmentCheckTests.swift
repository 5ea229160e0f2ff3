import Adapters
import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

@Suite("The adapter context carries only what the adapter needs")
struct AdapterContextTests {
    @Test("a single-call action's context carries no payload; a sequence's only the fields its next call reads; an old full context reads the same")
    func minimalContext() throws {
        let tax = try translator("tax")
        let payload: JSONValue = try JSONValue.parse("""
            {"uscc": "91350203M0001QKT19", "approvedName": "厦门样例贸易有限公司", "address": "思明区样例路 1 号", "legalRepresentativeName": "样例",
             "legalRepresentativeIdNumber": "11010519491231002X", "taxpayerType": "small-scale", "industryCode": "F5212",
             "entityType": "limited-liability", "region": "350203"}
            """)
        guard case .request(let swdj) = tax.start(command: command("register-taxpayer", step: "tax-registration", payload: payload)) else {
            Issue.record("no request"); return
        }
        let header = String(decoding: try JSONEncoder().encode(swdj.context), as: UTF8.self)
        #expect(!header.contains("11010519491231002X") && !header.contains("样例"), "personal data in the context: \(header)")
        #expect(swdj.context.command["payload"] == .object([:]))
        #expect(swdj.context.sagaId == "APP-1" && swdj.context.requestId == "APP-1/tax-registration/r1" && swdj.context.attempt == 1)

        // The reply maps to the same event with the minimal context as with a full one (an in-flight context of an older adapter).
        let reply = try JSONValue.parse("""
            {"jylsh": "APP-1/tax-registration/r1/SWDJ", "jylx": "SWDJ", "glywbh": "APP-1", "glhjbh": "tax-registration", "fhdm": "0000", "fhxx": "成功",
             "nsrsbh": "91350203M0001QKT19", "djxh": "10000000000000000001", "zgswjgdm": "13502030000", "zgswjgmc": "国家税务总局厦门市思明区税务局", "djrq": "2026-03-02"}
            """)
        var full = swdj.context
        full.command = command("register-taxpayer", step: "tax-registration", payload: payload)
        guard case .event(let event) = try tax.finish(reply: reply, context: swdj.context),
              case .event(let old) = try tax.finish(reply: reply, context: full) else { Issue.record("no event"); return }
        #expect(old.type == event.type && old.payload == event.payload)
        #expect(event.type == MessageType.stepSucceeded && event.payload["outputs"]?["taxRegistrationSeq"] == "10000000000000000001")

        // A sequence: PZHD's context keeps what UKFF reads (taxpayerId, taxRegistrationSeq), not the invoice types.
        let invoices: JSONValue = ["taxpayerId": "91350203M0001QKT19", "taxRegistrationSeq": "10000000000000000001", "invoiceTypes": ["digital-general"]]
        guard case .request(let pzhd) = tax.start(command: command("issue-invoices-and-ukey", step: "invoices", payload: invoices)) else {
            Issue.record("no request"); return
        }
        #expect(pzhd.context.command["payload"] == ["taxpayerId": "91350203M0001QKT19", "taxRegistrationSeq": "10000000000000000001"])
        let pzhdReply = try JSONValue.parse("""
            {"jylsh": "APP-1/invoices/r1/PZHD", "jylx": "PZHD", "glywbh": "APP-1", "glhjbh": "invoices", "fhdm": "0000", "fhxx": "成功",
             "hdjg": [{"fpzldm": "82", "fpzlmc": "电子发票（普通发票）", "dzkpxe": 100000}], "hdrq": "2026-03-02"}
            """)
        guard case .request(let ukff) = try tax.finish(reply: pzhdReply, context: pzhd.context) else { Issue.record("no UKFF"); return }
        #expect(ukff.message["djxh"] == "10000000000000000001" && ukff.message["nsrsbh"] == "91350203M0001QKT19")
        // UKFF is the last call: only the PZHD reply the outputs read stays, and no payload.
        #expect(ukff.context.command["payload"] == .object([:]) && ukff.context.replies.keys.sorted() == ["PZHD"])
    }
}

@Suite("yishi department check: the conformance kit", .serialized)
struct DepartmentCheckTests {
    @Test("passes against the five simulators and the Python reference department; fails naming the header against one that does not echo the context, and against one that acts twice on a repeated request id",
          .timeLimit(.minutes(2)))
    func conformance() async throws {
        let python = try Subprocess.setUp("setup-confluent-kafka.sh", repoRoot: repoRoot)
        let bootstrap = try Broker.bootstrap
        let stem = uniqueName("dcheck")
        let sim = stem + "-sim.", good = stem + "-py.", bad = stem + "-bad.", forgetful = stem + "-nomemo."
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: bootstrap))
        let agencies = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")).ids
        for prefix in [sim, good, bad, forgetful] { try await admin.ensureTopics(HubTopics.all(prefix: prefix, partitions: 3, agencies: agencies)) }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent(stem)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment)
        // 1 working minute = 1/600 s: the simulators' latencies (up to 180 working minutes) pass in a fraction of a second.
        let clock = ["--clock-start", "2026-03-02T09:00:00+08:00", "--clock-speed", "36000", "--clock-working-hours", "cn-mainland"]
        var simulators: [YishiProcess] = []
        defer { for p in simulators { p.terminate() } }
        for agency in HubTopics.defaultAgencies {
            simulators.append(try YishiProcess("dept." + agency, ["department", "run", "--agency", agency, "--profile", "no-faults",
                                                                 "--bootstrap", bootstrap, "--prefix", sim, "--partitions", "3"] + clock,
                                               command: yishi, logDirectory: work))
        }
        let script = repoRoot.appendingPathComponent("examples/python-department/tax_department.py").path
        let departments = [try BackgroundProcess(python, [script, "--bootstrap", bootstrap, "--prefix", good],
                                                 out: work.appendingPathComponent("py.out"), err: work.appendingPathComponent("py.log")),
                           try BackgroundProcess(python, [script, "--bootstrap", bootstrap, "--prefix", bad, "--no-echo-context"],
                                                 out: work.appendingPathComponent("py-bad.out"), err: work.appendingPathComponent("py-bad.log")),
                           try BackgroundProcess(python, [script, "--bootstrap", bootstrap, "--prefix", forgetful, "--no-memo"],
                                                 out: work.appendingPathComponent("py-nomemo.out"), err: work.appendingPathComponent("py-nomemo.log"))]
        defer { for p in departments { p.terminate() } }

        // All seven checks at once (each mostly waits for replies), as background processes started from this thread.
        let runs = [(agency: String, prefix: String)](HubTopics.defaultAgencies.map { ($0, sim) } + [("tax", good), ("tax", bad), ("tax", forgetful)])
        let binary = repoRoot.appendingPathComponent(".build/debug/yishi").path
        let checks = try runs.enumerated().map { i, run in
            try BackgroundProcess(binary, ["department", "check", "--agency", run.agency, "--bootstrap", bootstrap, "--prefix", run.prefix,
                                           "--partitions", "3", "--timeout", "20", "--json"],
                                  out: work.appendingPathComponent("check\(i).json"), err: work.appendingPathComponent("check\(i).err"),
                                  directory: repoRoot)
        }
        let deadline = ContinuousClock.now + .seconds(90)
        while checks.contains(where: \.isRunning), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        for c in checks { c.terminate() }
        let results = checks.map(\.result)
        for (run, result) in zip(runs, results) {
            let report = try? JSONDecoder().decode(DepartmentCheck.Report.self, from: Data(result.out.utf8))
            if run.prefix == bad {
                #expect(result.status == 1, "\(result)")
                let first = try #require(report?.results.first)
                #expect(first.action == "register-taxpayer" && first.status == "fail")
                #expect(first.reasons.contains { $0.contains("no yishi-adapter-context header") }, "\(first.reasons)")
                // Only the context header is wrong (on the reply and on the repeated request's): every other check passed.
                #expect(first.reasons.allSatisfy { $0.contains("no yishi-adapter-context header") }, "\(first.reasons)")
            } else if run.prefix == forgetful {
                // A department that acts again on a repeated request id: the repeat gets another answer (2002, taxpayer exists).
                #expect(result.status == 1, "\(result)")
                let first = try #require(report?.results.first)
                #expect(first.status == "fail" && first.reasons.contains { $0.contains("sent again got a different answer") && $0.contains("fhdm") },
                        "\(first.reasons)")
            } else {
                #expect(result.status == 0, "\(run.agency) on \(run.prefix): \(result)")
                #expect(report?.results.count ?? 0 >= 2 && report?.results.allSatisfy { $0.status == "pass" } == true, "\(result.out)")
            }
        }
        // The Python department against the hub: orchestrator, the real tax adapter, and scripted stand-ins for the
        // other agencies, on the prefix the Python department already serves. One seed application completes,
        // its tax steps answered by Python through the adapter.
        var connection = HubConnection(bootstrap: bootstrap)
        connection.prefix = good
        connection.partitions = 3
        let orchestrator = try BackgroundOrchestrator(OrchestratorConfig(connection: connection, instanceId: "o1", repository: repoRoot))
        defer { orchestrator.stop() }
        let catalogues = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters"))
        let responders = try ScriptedResponders(config: connection.clientConfig(clientId: "responders"), prefix: good, catalogues: catalogues,
                                                agencies: catalogues.ids.filter { $0 != "tax" }, now: { Date() })
        defer { responders.close() }
        let adapter = try AdapterService(agency: "tax", connection: connection, instanceId: "t1", repository: repoRoot,
                                         log: JSONLog(component: "adapter.tax", minimum: .error))
        let adapterThread = Thread { try? adapter.run() }
        adapterThread.start()
        defer { adapter.stop(); waitForEnd(of: adapterThread) }
        let form = try #require(try SeedApplications.valid(repoRoot: repoRoot, limit: 1).first)
        let sagaId = try #require(form["applicationId"]?.stringValue)
        let producer = try KafkaProducer(config: connection.clientConfig(clientId: "applicant"))
        try SeedApplications.submit([form], topicPrefix: good, producer: producer, time: Date())
        let reader = try KafkaConsumer(config: connection.consumerConfig(clientId: "reader"), groupId: uniqueName("reader"))
        defer { try? reader.close() }
        try reader.subscribe([connection.topic("saga-events"), connection.topic("events.tax")])
        var finished: JSONValue?
        var taxEvents: [String: JSONValue] = [:]
        let until = ContinuousClock.now + .seconds(40)
        while finished == nil, ContinuousClock.now < until, orchestrator.failure == nil {
            for m in try reader.poll(maxMessages: 100, timeout: .milliseconds(100)) where m.keyString == sagaId {
                let type = m.headers.string(Envelope.Header.type)
                let body = try? JSONValue.parse(m.value ?? Data())
                if type == MessageType.sagaFinished { finished = body }
                if m.topic == connection.topic("events.tax"), let step = body?["step"]?.stringValue { taxEvents[step] = body }
            }
        }
        #expect(orchestrator.failure == nil)
        #expect(finished?["status"] == "completed", "saga \(sagaId): \(finished?.text() ?? "not finished"); tax events: \(taxEvents)")
        // The 登记序号 is the Python department's (1 + division + 13-digit sequence), passed on to 票种核定 and UKey.
        let seq = taxEvents.values.compactMap { $0["outputs"]?["taxRegistrationSeq"]?.stringValue }.first
        #expect(seq?.count == 20 && seq?.hasPrefix("1") == true, "\(taxEvents)")
        #expect(taxEvents.values.contains { $0["outputs"]?["ukeyId"]?.stringValue?.count == 12 }, "\(taxEvents)")

        // The realistic tax samples ran the whole sequence against both tax departments (not only rejections).
        for i in [2, 5] {
            let report = try #require(try? JSONDecoder().decode(DepartmentCheck.Report.self, from: Data(results[i].out.utf8)))
            #expect(report.results.first { $0.action == "issue-invoices-and-ukey" }?.calls == ["PZHD", "UKFF"], "\(results[i].out)")
            #expect(report.results.first { $0.action == "issue-invoices-and-ukey" }?.event == MessageType.stepSucceeded)
        }
    }
}

@Suite("yishi department check: usage")
struct DepartmentCheckUsageTests {
    @Test("--help exits 0; an unknown agency or a broken samples file exits 2 with one line naming it")
    func usage() throws {
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment)
        let help = try yishi.run(["department", "check", "--help"])
        #expect(help.status == 0 && help.out.contains("yishi-adapter-context") && help.out.contains("Exit codes"))
        let unknown = try yishi.run(["department", "check", "--agency", "customs", "--bootstrap", "127.0.0.1:1"])
        #expect(unknown.status == 2 && unknown.err.contains("no catalogue for agency 'customs'") && unknown.err.contains("tax"), "\(unknown)")
        #expect(unknown.err.split(separator: "\n").count == 1, "\(unknown)")

        // A copy of the repository's adapters/ and schemas/ with a samples file naming an action tax does not have.
        let repo = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName("dcheck-repo"))
        defer { try? FileManager.default.removeItem(at: repo) }
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        for dir in ["adapters", "schemas"] {
            try FileManager.default.copyItem(at: repoRoot.appendingPathComponent(dir), to: repo.appendingPathComponent(dir))
        }
        let samples = repo.appendingPathComponent("adapters/tax/check-samples.json")
        try Data(#"{"samples": [{"action": "open-account", "input": {}}]}"#.utf8).write(to: samples)
        let bad = try yishi.run(["department", "check", "--agency", "tax", "--bootstrap", "127.0.0.1:1", "--repository", repo.path])
        #expect(bad.status == 2 && bad.err.contains("check-samples.json: $.samples[0].action") && bad.err.contains("'open-account'"), "\(bad)")
    }
}

/// Blocks until `thread` has finished (a service's `run` loop after `stop()`).
func waitForEnd(of thread: Thread) {
    while !thread.isFinished { Thread.sleep(forTimeInterval: 0.02) }
}

/// A program run in the background (a Python department, a check), stdout and stderr to files.
final class BackgroundProcess {
    let process = Process()
    let out: URL, err: URL

    init(_ executable: String, _ arguments: [String], out: URL, err: URL, directory: URL? = nil) throws {
        self.out = out; self.err = err
        for file in [out, err] { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    /// SIGTERM, and SIGKILL when it has not ended 5 s later; then wait.
    func terminate() {
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Exit status and output, once it has ended.
    var result: (status: Int32, out: String, err: String) {
        (process.isRunning ? -1 : process.terminationStatus,
         (try? String(contentsOf: out, encoding: .utf8)) ?? "", (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}
