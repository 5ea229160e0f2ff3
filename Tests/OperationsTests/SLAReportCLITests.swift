import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// `yishi report sla` as a supervisor runs it: the binary reads `saga-events` and `saga-state`
/// that a real orchestrator wrote (scripted agencies refuse social-security, so every saga opens
/// a 办不成事 case there; one is skipped by an operator and completes).
@Suite struct SLAReportCLITests {
    @Test("report sla reads the audit trail an orchestrator wrote: table, JSON, CSV, HTML; bad input exit 2", .timeLimit(.minutes(2)))
    func reportFromTheTopics() async throws {
        let fx = try OpsFixture()
        let responders = try fx.responders(reject: ["social-security"])
        defer { responders.close() }
        let orchestrator = try BackgroundOrchestrator(fx.orchestratorConfig())
        defer { orchestrator.stop() }
        let ids = try fx.submit(3, tag: "SLA").map { $0["applicationId"]!.stringValue! }
        for id in ids { _ = try await fx.waitForSaga(id, "a social-security case") { $0.manualCases.contains { $0.step == "social-security" } } }
        let client = OpsClient(hub: fx.hub)
        let skip = try client.send(OpsRequest(requestId: client.newRequestId(), by: "operator-li", action: .skip, sagaId: ids[0],
                                              step: "social-security", reason: "registered at the counter"))
        #expect(skip.ok, "\(skip)")
        _ = try await fx.waitForSaga(ids[0], "completed") { $0.status == .completed }

        // One unreadable audit record and one unreadable state record among them: skipped with a note, never fatal.
        let producer = try KafkaProducer(config: fx.hub.kafka())
        let audit = Envelope(source: "/yishi/orchestrator/o1", type: MessageType.sagaAudit("submitted"), time: Date(), subject: "APP-SLA-BAD")
        let badEvent = try await producer.send(ProducerRecord(topic: fx.hub.topic("saga-events"), partition: 0, key: "APP-SLA-BAD",
                                                              value: Data("{\"seq\": \"x\"}".utf8), headers: audit.headers))
        let badState = try await producer.send(ProducerRecord(topic: fx.hub.topic("saga-state"), partition: 1, key: "APP-SLA-BAD",
                                                              value: Data([0xff, 0x00, 0x7b])))

        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "YISHI_TOPIC_PREFIX")
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: env)
        // Read the next morning (Tuesday 10:00 on the hub calendar): the two sagas still held are past their deadline.
        let common = ["--bootstrap", fx.hub.bootstrap, "--prefix", fx.prefix, "--timeout", "15", "--clock-start", "2026-03-03T10:00:00+08:00",
                      "--from", "2026-03-02", "--to", "2026-03-02"]
        let json = try yishi.run(["report", "sla", "--json"] + common)
        try #require(json.status == 0, "\(json)")
        let v = try JSONValue.parse(Data(json.out.utf8))
        #expect(json.err.contains("note: skipped \(fx.hub.topic("saga-events"))[0]@\(badEvent.offset)"), "\(json.err)")
        #expect(json.err.contains("note: skipped \(fx.hub.topic("saga-state"))[1]@\(badState.offset)"), "\(json.err)")
        let bundle = try #require(v["bundles"]?.arrayValue?.first)
        #expect(v["bundles"]?.arrayValue?.count == 1 && bundle["bundle"] == "enterprise-opening", "\(json.out.prefix(2000))")
        #expect(bundle["figures"]?["count"] == 3 && bundle["figures"]?["onTime"] == 1 && bundle["figures"]?["late"] == 2, "\(bundle)")
        #expect(bundle["completed"] == 1 && bundle["figures"]?["manualOpened"] == 3 && bundle["figures"]?["manualResolved"] == 1, "\(bundle)")
        #expect(v["timeZone"] == "Asia/Shanghai (UTC+08:00)")
        let breaches = v["breaches"]?.arrayValue ?? []
        #expect(breaches.count == 2, "\(breaches)")
        for b in breaches {
            #expect(b["arose"] == [["step": "social-security", "agency": "social-security", "waitingOn": "operator"]], "\(b)")
        }
        let cases = v["cases"]?.arrayValue ?? []
        #expect(cases.count == 3 && cases.filter { $0["resolution"] == "stepSkipped" }.map { $0["sagaId"] } == [.string(ids[0])], "\(cases)")
        let social = v["steps"]?.arrayValue?.first { $0["step"] == "social-security" }
        #expect(social?["figures"]?["manualOpened"] == 3 && social?["figures"]?["breaches"] == 2, "\(String(describing: social))")
        for saga in v["sagas"]?.arrayValue ?? [] {
            guard case .number(let all)? = saga["elapsedWorkingMs"], case .number(let dept)? = saga["departmentWorkingMs"],
                  case .number(let op)? = saga["operatorWorkingMs"], case .number(let hub)? = saga["hubWorkingMs"],
                  case .number(let applicant)? = saga["applicantWorkingMs"] else { Issue.record("\(saga)"); continue }
            #expect(dept + op + hub + applicant == all && dept > 0 && hub >= 0, "\(saga)")
        }

        let table = try yishi.run(["report", "sla", "--no-color"] + common)
        #expect(table.status == 0 && table.out.contains("督查 SLA report · 2026-03-02 → 2026-03-02, days in Asia/Shanghai (UTC+08:00)"), "\(table)")
        #expect(table.out.contains("social-security @ social-security (operator)"), "\(table)")
        let csv = try yishi.run(["report", "sla", "--csv", "--table", "sagas"] + common)
        #expect(csv.status == 0 && csv.out.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 4, "\(csv)")
        let file = repoRoot.appendingPathComponent(".build/sla-report/cli-\(fx.prefix)html")
        let html = try yishi.run(["report", "sla", "--html", file.path] + common)
        #expect(html.status == 0 && html.out.contains("written to \(file.path)"), "\(html)")
        let page = try String(contentsOf: file, encoding: .utf8)
        #expect(page.contains("<table id=\"breaches\">") && page.contains(ids[1]) && !page.contains("<script"))
        try? FileManager.default.removeItem(at: file)
        // A period with none of them, and one agency's view.
        let empty = try yishi.run(["report", "sla", "--json"] + common.dropLast(4) + ["--from", "2026-03-04", "--to", "2026-03-05"])
        let emptyReport = try JSONValue.parse(Data(empty.out.utf8))
        #expect(empty.status == 0 && emptyReport["sagas"] == [], "\(empty)")
        let tax = try yishi.run(["report", "sla", "--json", "--agency", "tax"] + common)
        let taxReport = try JSONValue.parse(Data(tax.out.utf8))
        #expect(tax.status == 0 && taxReport["agencies"]?.arrayValue?.map { $0["agency"] } == ["tax"], "\(tax)")

        // Bad input: exit 2, naming it, before any broker read.
        let period = ["--from", "2026-03-02", "--to", "2026-03-02"]
        for (args, says) in [(period + ["--bundle", "no-such-bundle"], "unknown bundle 'no-such-bundle'"),
                             (period + ["--agency", "police"], "unknown agency 'police'"),
                             (["--from", "2026-03-09", "--to", "2026-03-02"], "--from 2026-03-09 is after --to 2026-03-02"),
                             (["--from", "2026-02-30", "--to", "2026-03-02"], "--from '2026-02-30' is not a date"),
                             (["--to", "2026-3-2", "--from", "2026-03-01"], "--to '2026-3-2' is not a date"),
                             (["--csv", "--json", "--from", "2026-03-01", "--to", "2026-03-02"], "choose one of --json, --csv and --html"),
                             (["--to", "2026-03-02"], "--from DATE is required")] {
            let r = try yishi.run(["report", "sla", "--bootstrap", "127.0.0.1:1"] + args)
            #expect(r.status == 2 && r.err.contains(says), "\(args): \(r)")
        }
    }
}
