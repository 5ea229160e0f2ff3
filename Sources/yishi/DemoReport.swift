import Foundation
import FrontDesk
import Operations
import SagaEngine

/// The demo's 督查 report: `yishi report sla --html` over the sagas this front desk saw, written
/// after the outcome table (default `.build/demo-sla-report.html`, `--report FILE`).
enum DemoReport {
    static let help = "  --report FILE          where to write the 督查 SLA report (HTML; default .build/demo-sla-report.html)"

    /// Builds the report from the front desk's audit trails (the same events `saga-events` holds)
    /// over the days from `start` to the clock's now, writes it, and returns the line saying where.
    static func write(trails: [SagaTrail], library: BundleLibrary, env: Environment, start: Instant, now: Instant,
                      calendar: BusinessCalendar, path: String) throws -> String {
        let from = CivilDate(dayNumber: calendar.localDay(start)), to = CivilDate(dayNumber: calendar.localDay(max(start, now)))
        let period = try ReportPeriod(from: from.description, to: to.description)
        let events = trails.sorted { $0.sagaId < $1.sagaId }.flatMap(\.events)
        let skipped = SkipLog()
        let inputs = SLAReport.inputs(events: events, states: [], library: library, period: period, bundle: nil, skipped: skipped)
        let report = SLAReport(sagas: inputs, from: from.description, to: to.description,
                               timeZone: SLAReportCommand.zoneLabel(library: library, env: env), asOf: now,
                               agencyTitles: library.catalogues.agencies.mapValues(\.title))
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(report.html().utf8).write(to: url, options: .atomic)
        return "督查 SLA report (\(report.sagas.count) sagas, \(report.breaches.count) breach(es), HTML with charts) written to \(url.path)"
            + skipped.all.map { "\n  note: \($0)" }.joined()
    }
}
