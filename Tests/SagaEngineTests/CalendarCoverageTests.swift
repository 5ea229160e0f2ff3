import Foundation
import Testing
@testable import SagaEngine

/// The calendar knows the years it covers and which are provisional; a deadline reaching a
/// year it does not cover is flagged on the saga, never silently computed as weekends only.
@Suite struct CalendarCoverageTests {
    func submit(_ id: String, at t: Instant) -> (SagaState, [AuditEvent]) {
        let b = bundle(id)
        var form = sampleForm
        // Handed in at t: the SLA counts from the form's submittedAt.
        if case .object(var o) = form { o["bundle"] = .string(id); o["submittedAt"] = .string(t.description); form = .object(o) }
        var state = SagaState(sagaId: "S-\(t.ms)", bundle: b)
        let out = SagaEngine.apply(to: &state, SagaInput(at: t, .submit(form: form, licences: [:])), bundle: b, calendar: calendar)
        return (state, out.compactMap { if case .audit(let e) = $0 { return e }; return nil })
    }

    @Test func theCalendarKnowsItsYears() {
        #expect(calendar.coveredYears == [2025, 2026, 2027])
        #expect(calendar.provisionalYears == [2027])
        #expect(calendar.gaps(from: at("2026-03-02T09:00:00+08:00"), to: at("2026-03-04T09:00:00+08:00")).isEmpty)
        #expect(calendar.gaps(from: at("2027-12-30T09:00:00+08:00"), to: at("2028-01-04T09:00:00+08:00"))
                == BusinessCalendar.Gaps(uncovered: [2028], provisional: [2027]))
        // The local (UTC+8) year counts: 2027-12-31T17:00Z is already 2028 in Beijing.
        #expect(calendar.gaps(from: at("2027-12-31T17:00:00Z"), to: at("2027-12-31T17:00:00Z")).uncovered == [2028])
    }

    /// A restaurant saga submitted 2028-01-24: its deadline lands in a year the calendar does not
    /// cover (Spring Festival 2028 is not in it), so the saga carries the flag and says so in its
    /// `submitted` audit event.
    @Test func aDeadlineInAnUncoveredYearIsFlaggedOnTheSaga() {
        let (state, audit) = submit("restaurant-opening", at: at("2028-01-24T09:00:00+08:00"))
        #expect(state.calendarNotCovered == [2028])
        let submitted = audit.first { $0.kind == .submitted }
        #expect(submitted?.detail?.contains("calendar cn-mainland does not cover 2028") == true, "\(String(describing: submitted))")
        // Covered, published: no flag.
        let (ok, okAudit) = submit("restaurant-opening", at: at("2026-03-02T09:00:00+08:00"))
        #expect(ok.calendarNotCovered == nil && ok.calendarProvisional == nil)
        #expect(okAudit.first { $0.kind == .submitted }?.detail?.contains("calendar") == false)
        // Provisional year: flagged as such.
        let (provisional, _) = submit("restaurant-opening", at: at("2027-06-01T09:00:00+08:00"))
        #expect(provisional.calendarProvisional == [2027] && provisional.calendarNotCovered == nil)
    }

    /// `yishi bundles validate` as of an instant: an uncovered deadline year is a problem naming
    /// the file, a provisional one a warning.
    @Test func validationReportsCoverageAsOfAnInstant() {
        let late = library.calendarCoverage(at: at("2028-01-24T09:00:00+08:00"))
        #expect(Set(late.problems.map(\.file)).count == library.bundles.count)
        let restaurant = late.problems.first { $0.file.hasSuffix("restaurant-opening.v1.json") }
        #expect(restaurant?.kind == .calendarNotCovered && restaurant?.path == "$.sla.calendar")
        #expect(restaurant?.message.contains("2028") == true && restaurant?.message.contains("cn-mainland") == true, "\(String(describing: restaurant))")
        let now = library.calendarCoverage(at: at("2026-03-02T09:00:00+08:00"))
        #expect(now.problems.isEmpty && now.warnings.isEmpty)
        let provisional = library.calendarCoverage(at: at("2027-03-01T09:00:00+08:00"))
        #expect(provisional.problems.isEmpty && provisional.warnings.count == library.bundles.count)
    }
}
