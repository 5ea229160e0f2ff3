import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Testing
import YishiKafka

/// Fixed sagas built by running the engine on fixed inputs at fixed instants, so the rendered
/// tables are the same on every run. `YISHI_UPDATE_GOLDEN=1` rewrites the golden files.
struct Fixtures {
    /// Version 1: the golden files show sagas of that version (v2 adds the housing fund; running v1 sagas keep v1).
    let bundle = library.bundle("enterprise-opening", version: 1)!
    var calendar: BusinessCalendar { library.calendar(for: bundle)! }
    static let t0 = Instant(rfc3339: "2026-03-02T09:15:00+08:00")!
    /// Monday 14:00: the fixed "now" of every golden file.
    static let now = Instant(rfc3339: "2026-03-02T14:00:00+08:00")!
    let form: JSONValue

    init() throws {
        let seed = try SeedApplications.valid(repoRoot: repoRoot).first { $0["bundle"]?.stringValue == "enterprise-opening" }!
        form = seed
    }

    static func minutes(_ m: Int64) -> Instant { t0 + m * 60_000 }

    func outputs(_ step: String) -> [String: JSONValue] {
        let i = bundle.stepIndex(of: step)!
        let action = library.catalogues.agencies[bundle.steps[i].agency]!.actions.first { $0.id == bundle.steps[i].action }!
        return Dictionary(uniqueKeysWithValues: action.outputs.map { ($0.name, .string("\($0.name)-fixture")) })
    }

    /// Applies inputs in order; returns the state and its audit trail.
    func run(_ id: String, _ inputs: [SagaInput]) -> (SagaState, [AuditEvent]) {
        var state = SagaState(sagaId: id, bundle: bundle)
        var audit: [AuditEvent] = []
        for input in inputs {
            for output in SagaEngine.apply(to: &state, input, bundle: bundle, calendar: calendar) {
                if case .audit(let e) = output { audit.append(e) }
            }
        }
        return (state, audit)
    }

    func submit(_ id: String, at: Instant = t0) -> SagaInput {
        guard case .object(var f) = form else { fatalError("seed form is not an object") }
        f["applicationId"] = .string(id)
        return SagaInput(at: at, .submit(form: .object(f), licences: [:]))
    }

    func ok(_ step: String, _ m: Int64, attempt: Int = 1) -> SagaInput {
        SagaInput(at: Self.minutes(m), .stepSucceeded(step: step, attempt: attempt, outputs: outputs(step)))
    }

    /// Social security rejected for good (a 办不成事 case); tax failed once and is backing off; seals succeeded.
    var manual: (SagaState, [AuditEvent]) {
        run("APP-GOLDEN-MANUAL", [
            submit("APP-GOLDEN-MANUAL"), ok("name-reservation", 3), ok("registration", 40),
            SagaInput(at: Self.minutes(52), .stepRejected(step: "social-security", attempt: 1, code: "INVALID_REQUEST",
                                                         reason: "employee count 0 for legal representative 11010519491231002X",
                                                         field: "$.employees.expectedCount")),
            SagaInput(at: Self.minutes(55), .stepFailed(step: "tax-registration", attempt: 1, code: "UNAVAILABLE", message: "tax bureau gateway down")),
            ok("seals", 70),
            SagaInput(at: Self.minutes(90), .operatorCommand(OperatorCommand(id: "ctl-1", by: "operator-zhang", .pause(reason: "checking with the bank")))),
            SagaInput(at: Self.minutes(95), .operatorCommand(OperatorCommand(id: "ctl-2", by: "operator-zhang", .resume))),
        ])
    }

    var running: (SagaState, [AuditEvent]) {
        run("APP-GOLDEN-RUNNING", [submit("APP-GOLDEN-RUNNING", at: Self.minutes(30)), ok("name-reservation", 31)])
    }

    var completed: (SagaState, [AuditEvent]) {
        run("APP-GOLDEN-DONE", [
            submit("APP-GOLDEN-DONE", at: Self.minutes(-60)), ok("name-reservation", -58), ok("registration", -50),
            ok("seals", -40), ok("tax-registration", -39), ok("social-security", -38), ok("bank-account", -20), ok("invoices-ukey", -10),
        ])
    }
}

func golden(_ name: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let url = repoRoot.appendingPathComponent("Tests/OperationsTests/Golden/\(name)")
    if ProcessInfo.processInfo.environment["YISHI_UPDATE_GOLDEN"] == "1" {
        try (text + "\n").write(to: url, atomically: true, encoding: .utf8)
        return
    }
    guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
        Issue.record("golden file \(url.lastPathComponent) is missing: run with YISHI_UPDATE_GOLDEN=1 and review it", sourceLocation: sourceLocation)
        return
    }
    #expect(text + "\n" == expected, "\(name) differs from its golden file:\n\(text)", sourceLocation: sourceLocation)
}

@Suite("Operator reports: golden tables, JSON, no personal data")
struct GoldenTests {
    let f: Fixtures
    init() throws { f = try Fixtures() }

    var known: Set<String> { personalValues([f.form]).union(["11010519491231002X"]) }

    func json<T: Encodable>(_ value: T) throws -> JSONValue {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return try JSONValue.parse(e.encode(value))
    }

    @Test func sagaListTable() throws {
        let states = [f.manual.0, f.running.0, f.completed.0]
        let rows = states.map { SagaSummary($0, bundle: f.bundle, calendar: f.calendar, now: Fixtures.now, revealPII: false) }
        let text = Render.sagaList(rows, next: SagaCursor(after: f.running.0), style: .plain)
        try golden("sagas-list.txt", text)
        expectNoPersonalData(text, known: known, "sagas list")
        let parsed = try json(rows)
        #expect(parsed.arrayValue?.count == 3)
        #expect(parsed.arrayValue?.first?["blockedAt"]?.arrayValue?.count == 3, "manual saga: social-security failed, tax backing off, bank out")
        #expect(parsed.arrayValue?.first?["applicant"]?.stringValue?.hasSuffix("*") == true)
    }

    @Test func showTimeline() throws {
        let (state, audit) = f.manual
        let t = SagaTimeline(state: state, bundle: f.bundle, calendar: f.calendar, audit: audit, now: Fixtures.now, source: "changelog")
        let text = Render.timeline(t, style: .plain)
        try golden("sagas-show.txt", text)
        expectNoPersonalData(text, known: known, "sagas show")
        #expect(t.blockers.first?.turn == "operator" && t.blockers.first?.step == "social-security")
        let registration = try #require(t.steps.first { $0.id == "registration" }?.attempts.first)
        #expect(registration.working.ms == 37 * 60_000 && registration.outcome == "succeeded", "\(registration)")
        #expect(t.operatorActions.map(\.by) == ["operator-zhang", "operator-zhang"])
        let parsed = try json(t)
        expectNoPersonalData(parsed.text(), known: known, "sagas show --json")
        #expect(parsed["inputs"]?["$.legalRepresentative.idNumber"]?.stringValue?.contains("*") == true)
        let revealed = SagaTimeline(state: state, bundle: f.bundle, calendar: f.calendar, audit: audit, now: Fixtures.now, source: "changelog",
                                    revealPII: true)
        #expect(revealed.inputs["$.legalRepresentative.idNumber"] == f.form["legalRepresentative"]?["idNumber"], "--reveal-pii shows the value")
    }

    @Test func diagnoseAnswer() throws {
        let (state, audit) = f.manual
        let t = SagaTimeline(state: state, bundle: f.bundle, calendar: f.calendar, audit: audit, now: Fixtures.now, source: "live")
        let d = Diagnosis(timeline: t, state: state, bundle: f.bundle, calendar: f.calendar, partition: 2, prefix: "yishi.") { agency in
            ("yishi.adapter.\(agency)", 4, nil)
        }
        let text = Render.diagnosis(d, style: .plain)
        try golden("sagas-diagnose.txt", text)
        expectNoPersonalData(text, known: known, "sagas diagnose")
        #expect(d.actions.contains { $0.command == "yishi sagas retry APP-GOLDEN-MANUAL --step social-security [--set FIELD=JSON]" })
        #expect(d.timers.contains { $0.id == "APP-GOLDEN-MANUAL/backoff/tax-registration/1" })
        let running = f.running
        let rt = SagaTimeline(state: running.0, bundle: f.bundle, calendar: f.calendar, audit: running.1, now: Fixtures.now, source: "live")
        let rd = Diagnosis(timeline: rt, state: running.0, bundle: f.bundle, calendar: f.calendar, partition: 0, prefix: "yishi.") { agency in
            ("yishi.adapter.\(agency)", 0, nil)
        }
        #expect(rd.blocking.first?.consumerGroup == "yishi.adapter.business-registration")
        #expect(rd.blocking.first?.topic == "yishi.commands.business-registration")
        _ = try json(rd)
    }

    @Test func casesTable() throws {
        let rows = Render.caseRows([f.manual.0, f.running.0], library: library, now: Fixtures.now, revealPII: false)
        #expect(rows.map(\.step) == ["social-security"])
        let text = Render.cases(rows, style: .plain)
        try golden("cases.txt", text)
        expectNoPersonalData(text, known: known, "cases")
    }

    @Test func bulkOutcomeAndLagAndDLQTables() throws {
        let outcome = Render.ActionOutcome(action: "skip social-security", dryRun: true, replies: [
            OpsReply(requestId: "r", ok: true, partition: 0),
            { var r = OpsReply(requestId: "r", ok: true, partition: 1); r.affected = ["APP-2", "APP-1"]
              r.refused = [OpsRefusal(sagaId: "APP-3", reason: "command r: social-security is succeeded")]; return r }(),
        ])
        try golden("bulk-dry-run.txt", Render.actionOutcome(outcome, style: .plain))
        #expect(try json(outcome)["affected"] == ["APP-1", "APP-2"])

        let rows = [LagProbe.Row(group: "yishi.adapter.tax", topic: "yishi.commands.tax", partitions: [
            .init(partition: 0, committed: 10, low: 0, high: 12, lag: 2), .init(partition: 1, committed: nil, low: 0, high: 3, lag: 3)])]
        try golden("lag.txt", Render.lag(rows, style: .plain))
        #expect(try json(rows).arrayValue?.first?["lag"] == 5)

        let original = KafkaMessage(topic: "yishi.applications", partition: 1, offset: 17, key: Data("APP-X".utf8),
                                    value: Data(#"{"legalRepresentative":{"idNumber":"11010519491231002X","phone":"13800138000"}}"#.utf8),
                                    headers: Envelope(source: "/frontdesk/test", type: MessageType.applicationSubmitted,
                                                      time: Date(timeIntervalSince1970: 1_772_413_200), subject: "APP-X").headers)
        let record = DeadLetter.record(for: original, group: "yishi-orchestrator",
                                       error: MessageRejection(.schema, "'13800138000' is not allowed here", path: "$.legalRepresentative.phone"),
                                       at: Date(timeIntervalSince1970: 1_772_413_260), dlqTopic: "yishi.dlq")
        let dead = KafkaMessage(topic: "yishi.dlq", partition: 0, offset: 3, key: record.key, value: record.value, headers: record.headers)
        let list = Render.deadLetters([DeadLetters.entry(dead, detail: false, revealPII: false)], style: .plain)
        try golden("dlq-list.txt", list)
        let show = DeadLetters.entry(dead, detail: true, revealPII: false)
        let showText = Render.deadLetter(show, style: .plain).replacingOccurrences(of: #"ce_id: [0-9a-f-]+"#, with: "ce_id: …", options: .regularExpression)
        try golden("dlq-show.txt", showText)
        for text in [list, showText, try json(show).text()] { expectNoPersonalData(text, known: known, "dlq output") }
    }

    @Test func colourOnlyWhenAsked() {
        let rows = [SagaSummary(f.manual.0, bundle: f.bundle, calendar: f.calendar, now: Fixtures.now, revealPII: false)]
        #expect(!Render.sagaList(rows, next: nil, style: .plain).contains("\u{1B}["))
        #expect(Render.sagaList(rows, next: nil, style: Style(colour: true)).contains("\u{1B}[31mmanual"))
    }
}
