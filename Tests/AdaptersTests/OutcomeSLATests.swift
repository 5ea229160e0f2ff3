import Foundation
@testable import FrontDesk
import SagaEngine
import Testing

/// The front desk's outcome report judges each saga against its own bundle's SLA
/// (`sla.workingDays`), not a fixed working day. Pure: trails built from audit events.
@Suite struct OutcomeSLATests {
    let library = try! BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                          catalogues: repoRoot.appendingPathComponent("adapters"),
                                          calendars: repoRoot.appendingPathComponent("seeds/calendar"))

    func event(_ id: String, _ seq: Int, _ at: Instant, _ kind: String, _ detail: String) throws -> AuditEvent {
        let json = #"{"sagaId":"\#(id)","seq":\#(seq),"at":\#(at.ms),"kind":"\#(kind)","detail":"\#(detail)"}"#
        return try JSONDecoder().decode(AuditEvent.self, from: Data(json.utf8))
    }

    func trail(_ id: String, bundle: String, from start: Instant, workingMs: Int64, calendar: BusinessCalendar) throws -> SagaTrail {
        var trail = SagaTrail(sagaId: id)
        trail.add(try event(id, 1, start, "submitted", "\(bundle) v1, due later"))
        trail.add(try event(id, 2, calendar.addWorkingTime(start, workingMs), "sagaFinished", "completed"))
        return trail
    }

    @Test("a restaurant opening (3 working days) done in 2 is on time; an enterprise opening (1 working day) done in 1.5 is late")
    func eachBundlesOwnSLA() throws {
        let calendar = try #require(library.calendars["cn-mainland"])
        let day = calendar.workingMsPerDay
        let start = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        #expect(library.newest("restaurant-opening")?.definition.sla.workingDays == 3)
        #expect(library.newest("enterprise-opening")?.definition.sla.workingDays == 1)
        let trails = [
            "APP-R": try trail("APP-R", bundle: "restaurant-opening", from: start, workingMs: 2 * day, calendar: calendar),
            "APP-E": try trail("APP-E", bundle: "enterprise-opening", from: start, workingMs: day + day / 2, calendar: calendar),
        ]
        let report = OutcomeReport(trails: trails, expectations: [:], library: library, calendar: calendar)
        #expect(report.valid == 2 && report.completedInTime == 1 && report.completedLate == 1)
        #expect(report.onTimeShare == 0.5)
        #expect(report.render().contains("completed within their SLA"))
    }
}
