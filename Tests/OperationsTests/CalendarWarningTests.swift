import Foundation
import Operations
import SagaEngine
import Testing
import YishiTestSupport

/// `yishi sagas show` names a deadline the calendar cannot vouch for.
@Suite struct CalendarWarningTests {
    @Test func sagasShowFlagsADeadlineInAnUncoveredYear() throws {
        let bundle = try #require(library.newest("restaurant-opening"))
        let calendar = try #require(library.calendar(for: bundle))
        let t0 = Instant(rfc3339: "2028-01-24T09:00:00+08:00")!
        // The SLA counts from the form's submittedAt: the application was handed in at t0.
        guard case .object(var fields) = try #require(try SeedApplicationsForm.restaurant()) else { Issue.record("form is not an object"); return }
        fields["submittedAt"] = .string("2028-01-24T09:00:00+08:00")
        let form = JSONValue.object(fields)
        var state = SagaState(sagaId: "APP-2028", bundle: bundle)
        var audit: [AuditEvent] = []
        for out in SagaEngine.apply(to: &state, SagaInput(at: t0, .submit(form: form, licences: [:])), bundle: bundle, calendar: calendar) {
            if case .audit(let e) = out { audit.append(e) }
        }
        let timeline = SagaTimeline(state: state, bundle: bundle, calendar: calendar, audit: audit, now: t0 + 3_600_000, source: "test")
        #expect(timeline.calendarWarning?.contains("does not cover 2028") == true, "\(String(describing: timeline.calendarWarning))")
        let text = Render.timeline(timeline, style: .plain)
        #expect(text.contains("Calendar   calendar cn-mainland does not cover 2028"), "\(text)")
        // A state written before the flag existed: the SLA window still shows it.
        state.calendarNotCovered = nil
        #expect(SagaTimeline(state: state, bundle: bundle, calendar: calendar, audit: audit, now: t0, source: "test").calendarWarning != nil)
        // A 2026 saga: no line.
        var ok = SagaState(sagaId: "APP-2026", bundle: bundle)
        let t1 = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        _ = SagaEngine.apply(to: &ok, SagaInput(at: t1, .submit(form: form, licences: [:])), bundle: bundle, calendar: calendar)
        let okText = Render.timeline(SagaTimeline(state: ok, bundle: bundle, calendar: calendar, audit: [], now: t1, source: "test"), style: .plain)
        #expect(!okText.contains("Calendar ") && !okText.contains("Definition "))
        // A saga that started on another definition of the same version (edited in place).
        ok.definitionFingerprint = String(repeating: "0", count: 64)
        let edited = SagaTimeline(state: ok, bundle: bundle, calendar: calendar, audit: [], now: t1, source: "test")
        #expect(edited.definitionWarning?.contains("edited in place") == true)
        #expect(Render.timeline(edited, style: .plain).contains("Definition restaurant-opening v1 in "))
    }
}

extension CalendarWarningTests {
    @Test func bundlesValidateFlagsAnUncoveredYearAsOfAnInstant() throws {
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment)
        let late = try yishi.run(["bundles", "validate", "--at", "2028-01-24T09:00:00+08:00"])
        #expect(late.status == 1, "\(late)")
        #expect(late.out.contains("restaurant-opening.v1.json: $.sla.calendar: a saga submitted 2028-01-24 09:00 is due"), "\(late)")
        #expect(late.out.contains("which calendar cn-mainland does not cover"), "\(late)")
        let now = try yishi.run(["bundles", "validate", "--at", "2026-03-02T09:00:00+08:00"])
        #expect(now.status == 0 && now.out.isEmpty, "\(now)")
        let provisional = try yishi.run(["bundles", "validate", "--at", "2027-03-01T09:00:00+08:00"])
        #expect(provisional.status == 0 && provisional.err.contains("warning:") && provisional.err.contains("provisional"), "\(provisional)")
    }
}

enum SeedApplicationsForm {
    static func restaurant() throws -> JSONValue? {
        let text = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").lazy.map { try JSONValue.parse(Data($0.utf8)) }.first { $0["bundle"] == "restaurant-opening" }
    }
}
