import Foundation
import Messaging
import Operations
import SagaEngine
import Testing
import YishiTestSupport

/// The 督查 SLA report's figures on synthetic audit trails whose right values are worked out by
/// hand (cn-mainland: working hours 09:00–12:00 and 13:30–17:30, 7 h a day; enterprise-opening:
/// SLA 1 working day, so a saga submitted Monday 09:00 is due Monday 17:30).
@Suite struct SLAReportTests {
    static let bundle = library.newest("enterprise-opening")!
    static let calendar = library.calendar(for: bundle)!
    /// Monday 2026-03-02 09:00 +08:00 and Tuesday 09:00.
    static let mon = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
    static let tue = Instant(rfc3339: "2026-03-03T09:00:00+08:00")!
    static func mon(_ minutes: Int64) -> Instant { mon + minutes * 60_000 }
    static func tue(_ minutes: Int64) -> Instant { tue + minutes * 60_000 }
    static let min: Int64 = 60_000

    struct Trail {
        let id: String
        var seq: UInt32 = 0
        var events: [AuditEvent] = []
        init(_ id: String) { self.id = id }
        mutating func add(_ at: Instant, _ kind: AuditEvent.Kind, _ step: String? = nil, attempt: Int? = nil, detail: String? = nil) {
            seq += 1
            // AuditEvent has no public initialiser: built from its JSON, as saga-events carries it.
            var o: [String: JSONValue] = ["sagaId": .string(id), "seq": .number(Double(seq)), "at": .number(Double(at.ms)), "kind": .string(kind.rawValue)]
            if let step { o["step"] = .string(step) }
            if let attempt { o["attempt"] = .number(Double(attempt)) }
            if let detail { o["detail"] = .string(detail) }
            events.append(try! JSONDecoder().decode(AuditEvent.self, from: JSONEncoder().encode(JSONValue.object(o))))
        }
        var input: SLAReport.Input { SLAReport.Input(sagaId: id, bundle: bundle, calendar: calendar, slaStart: events[0].at, events: events) }
    }

    /// A: on time, one 容缺 round at registration. B: registration fails, a 办不成事 case is open at
    /// the deadline, retried Tuesday. C: breached with nothing open (the hub). D: Tuesday, still at
    /// a department (open). E: finished late with no slaBreached event; registration out at the deadline.
    static func trails() -> [Trail] {
        var a = Trail("APP-A")
        a.add(mon(0), .submitted, detail: "enterprise-opening v1, due 2026-03-02 17:30")
        a.add(mon(1), .stepDispatched, "name-reservation", attempt: 1)
        a.add(mon(11), .stepSucceeded, "name-reservation", attempt: 1)
        a.add(mon(12), .stepDispatched, "registration", attempt: 1)
        a.add(mon(20), .supplementRequested, "registration", attempt: 1, detail: "shareholderResolution")
        a.add(mon(50), .supplementProvided, "registration", attempt: 1, detail: "shareholderResolution")
        a.add(mon(51), .stepDispatched, "registration", attempt: 2)
        a.add(mon(61), .stepSucceeded, "registration", attempt: 2)
        a.add(mon(70), .sagaFinished, detail: "completed")

        var b = Trail("APP-B")
        b.add(mon(0), .submitted, detail: "enterprise-opening v1, due 2026-03-02 17:30")
        b.add(mon(1), .stepDispatched, "name-reservation", attempt: 1)
        b.add(mon(5), .stepSucceeded, "name-reservation", attempt: 1)
        b.add(mon(6), .stepDispatched, "registration", attempt: 1)
        b.add(mon(16), .stepFailed, "registration", attempt: 1, detail: "INTERNAL: registry down")
        b.add(mon(17), .manualCaseOpened, "registration", attempt: 1, detail: "INTERNAL: registry down, call 13812345678")
        b.add(Instant(rfc3339: "2026-03-02T17:30:00+08:00")!, .slaBreached, detail: "deadline")
        b.add(tue(30), .stepRetried, "registration")
        b.add(tue(31), .stepDispatched, "registration", attempt: 2)
        b.add(tue(41), .stepSucceeded, "registration", attempt: 2)
        b.add(tue(50), .sagaFinished, detail: "completed")

        var c = Trail("APP-C")
        c.add(mon(0), .submitted, detail: "enterprise-opening v1, due 2026-03-02 17:30")
        c.add(mon(1), .stepDispatched, "name-reservation", attempt: 1)
        c.add(mon(2), .stepSucceeded, "name-reservation", attempt: 1)
        c.add(Instant(rfc3339: "2026-03-02T17:30:00+08:00")!, .slaBreached, detail: "deadline")

        var d = Trail("APP-D")
        d.add(tue(0), .submitted, detail: "enterprise-opening v1, due 2026-03-03 17:30")
        d.add(tue(1), .stepDispatched, "name-reservation", attempt: 1)

        var e = Trail("APP-E")
        e.add(mon(0), .submitted, detail: "enterprise-opening v1, due 2026-03-02 17:30")
        e.add(mon(1), .stepDispatched, "name-reservation", attempt: 1)
        e.add(mon(3), .stepSucceeded, "name-reservation", attempt: 1)
        e.add(Instant(rfc3339: "2026-03-02T17:00:00+08:00")!, .stepDispatched, "registration", attempt: 1)
        e.add(tue(5), .stepSucceeded, "registration", attempt: 1)
        e.add(tue(10), .sagaFinished, detail: "completed")
        return [a, b, c, d, e]
    }

    static func report(agency: String? = nil) -> SLAReport {
        SLAReport(sagas: trails().map(\.input), from: "2026-03-02", to: "2026-03-03", timeZone: "Asia/Shanghai (UTC+08:00)",
                  asOf: tue(60), agency: agency, agencyTitles: library.catalogues.agencies.mapValues(\.title))
    }

    @Test func percentilesAreNearestRank() {
        #expect(SLAReport.percentile([], 50) == nil)
        #expect(SLAReport.percentile([5], 50) == 5)
        #expect(SLAReport.percentile([4, 1, 3, 2], 50) == 2)
        #expect(SLAReport.percentile(Array(1...20), 95) == 19)
        #expect(SLAReport.percentile(Array(1...20), 100) == 20)
        #expect(SLAReport.percentile([10, 30, 20], 95) == 30)
    }

    @Test func bundleFiguresOnTimeAndPercentiles() throws {
        let r = Self.report()
        let b = try #require(r.bundles.first)
        #expect(r.bundles.count == 1 && b.bundle == "enterprise-opening")
        // A on time; B, C, E late; D open (left out of the %).
        #expect(b.figures.count == 5 && b.figures.onTime == 1 && b.figures.late == 3 && b.figures.open == 1)
        #expect(b.figures.onTimePercent == 25.0)
        // Finished: A 70 min, E 7 h + 10 min = 430 min, B 7 h + 50 min = 470 min.
        #expect(b.figures.p50WorkingHours == 7.167)  // 430 min
        #expect(b.figures.p95WorkingHours == 7.833)  // 470 min
        #expect(b.figures.breaches == 3 && b.completed == 3)
        #expect(b.figures.manualOpened == 1 && b.figures.manualResolved == 1)
        #expect(b.figures.supplementsRequested == 1 && b.figures.supplementsProvided == 1)
        // Mon 09:17 → Tue 09:30: 163 + 240 + 30 = 433 working minutes.
        #expect(b.figures.manualHandlingP50WorkingHours == 7.217)
    }

    @Test func stepFiguresJudgeTheBudgetWithoutTheApplicantsWait() throws {
        let r = Self.report()
        let reg = try #require(r.steps.first { $0.step == "registration" })
        // A: 12 → 61 = 49 min, less 30 min waiting for materials = 19 ≤ 3 h; B: Mon 09:06 → Tue 09:41 = 455 min > 3 h;
        // E: Mon 17:00 → Tue 09:05 = 35 min.
        #expect(reg.figures.count == 3 && reg.figures.onTime == 2 && reg.figures.late == 1)
        #expect(reg.figures.onTimePercent == 66.7)
        #expect(reg.figures.p50WorkingHours == 0.817)  // 49 min
        #expect(reg.figures.p95WorkingHours == 7.583)  // 455 min
        #expect(reg.budgetWorkingHours == 3)
        #expect(reg.figures.breaches == 2)  // B (case open) and E (at the department)
        #expect(reg.figures.supplementsRequested == 1 && reg.figures.manualOpened == 1)
        let name = try #require(r.steps.first { $0.step == "name-reservation" })
        #expect(name.figures.count == 5 && name.figures.onTime == 4 && name.figures.open == 1 && name.figures.onTimePercent == 100)
        #expect(!r.steps.contains { $0.step == "seals" })  // never dispatched: no row
        let agency = try #require(r.agencies.first { $0.agency == "business-registration" })
        #expect(agency.figures.count == 8 && agency.figures.breaches == 2 && agency.title == "市场监管 / 行政审批局（企业登记与许可）")
    }

    @Test func breachesArePlacedAtTheStepsOpenAtTheBreach() throws {
        let r = Self.report()
        let byId = Dictionary(uniqueKeysWithValues: r.breaches.map { ($0.sagaId, $0) })
        #expect(Set(byId.keys) == ["APP-B", "APP-C", "APP-E"])
        #expect(byId["APP-B"]?.arose == [.init(step: "registration", agency: "business-registration", waitingOn: "operator")])
        #expect(byId["APP-C"]?.arose == [.init(step: nil, agency: nil, waitingOn: "hub")])
        // No slaBreached event: breached at the deadline, where registration was out at its department.
        #expect(byId["APP-E"]?.breachedAt == Instant(rfc3339: "2026-03-02T17:30:00+08:00"))
        #expect(byId["APP-E"]?.arose == [.init(step: "registration", agency: "business-registration", waitingOn: "department")])
    }

    @Test func sagaTimeSplitsIntoDepartmentsApplicantOperatorAndHub() throws {
        let r = Self.report()
        let rows = Dictionary(uniqueKeysWithValues: r.sagas.map { ($0.sagaId, $0) })
        let a = try #require(rows["APP-A"])
        // Departments 10 + 8 + 10, applicant 30, the rest (70 − 58) is the hub's.
        #expect(a.elapsedWorkingMs == 70 * Self.min && a.departmentWorkingMs == 28 * Self.min)
        #expect(a.applicantWorkingMs == 30 * Self.min && a.operatorWorkingMs == 0 && a.hubWorkingMs == 12 * Self.min && a.sla == "onTime")
        let b = try #require(rows["APP-B"])
        #expect(b.elapsedWorkingMs == 470 * Self.min && b.departmentWorkingMs == 24 * Self.min && b.operatorWorkingMs == 433 * Self.min)
        #expect(b.hubWorkingMs == 13 * Self.min && b.sla == "late" && b.status == "completed")
        let d = try #require(rows["APP-D"])
        // Still at the department at asOf (Tue 10:00): 59 min there, 1 min in the hub.
        #expect(d.status == "running" && d.sla == "open" && d.departmentWorkingMs == 59 * Self.min && d.hubWorkingMs == 1 * Self.min)
        for row in r.sagas {
            #expect(row.departmentWorkingMs + row.applicantWorkingMs + row.operatorWorkingMs + row.hubWorkingMs == row.elapsedWorkingMs, "\(row.sagaId)")
        }
        let bundle = try #require(r.bundles.first)
        #expect(bundle.operatorWorkingHours == 7.217)
    }

    @Test func casesAreMaskedAndResolved() throws {
        let r = Self.report()
        let c = try #require(r.cases.first)
        #expect(r.cases.count == 1 && c.step == "registration" && c.kind == "forward" && c.resolution == "stepRetried")
        #expect(c.resolvedAt == Self.tue(30) && c.handlingWorkingHours == 7.217)
        #expect(c.detail?.contains("13812345678") == false, "\(c.detail ?? "")")
    }

    @Test func agencyFilterKeepsThatAgencysSteps() {
        let r = Self.report(agency: "tax")
        #expect(r.steps.isEmpty && r.agencies.isEmpty)  // no tax step was dispatched
        #expect(r.breaches.map(\.sagaId) == ["APP-C"])  // only the hub breach concerns every agency
        let reg = Self.report(agency: "business-registration")
        #expect(Set(reg.steps.map(\.step)) == ["name-reservation", "registration"] && reg.agencies.map(\.agency) == ["business-registration"])
    }

    @Test func inputsChooseByPeriodInTheCalendarZone() throws {
        // 2026-03-01 23:30 +08:00 is 15:30 UTC on the 1st; 2026-03-02 00:30 +08:00 is still the 1st in UTC.
        var early = Trail("APP-SUN")
        early.add(Instant(rfc3339: "2026-03-01T23:30:00+08:00")!, .submitted, detail: "enterprise-opening v1, due …")
        var late = Trail("APP-MON")
        late.add(Instant(rfc3339: "2026-03-02T00:30:00+08:00")!, .submitted, detail: "enterprise-opening v1, due …")
        var unknown = Trail("APP-X")
        unknown.add(Self.mon(0), .submitted, detail: "no-such-bundle v1, due …")
        let skipped = SkipLog()
        let events = early.events + late.events + unknown.events
        let period = try ReportPeriod(from: "2026-03-02", to: "2026-03-02")
        let inputs = SLAReport.inputs(events: events, states: [], library: library, period: period, bundle: nil, skipped: skipped)
        #expect(inputs.map(\.sagaId) == ["APP-MON"])
        #expect(inputs.first?.deadline == Instant(rfc3339: "2026-03-02T17:30:00+08:00"))
        #expect(skipped.all.count == 1 && skipped.all[0].contains("APP-X") && skipped.all[0].contains("no-such-bundle v1"))
        #expect(SLAReport.inputs(events: events, states: [], library: library, period: period, bundle: "barbershop-opening", skipped: skipped).isEmpty)
        #expect(throws: ReportPeriod.Problem.self) { try ReportPeriod(from: "2026-03-03", to: "2026-03-02") }
        #expect(throws: ReportPeriod.Problem.self) { try ReportPeriod(from: "2026-02-30", to: "2026-03-02") }
    }

    @Test func aRepeatedAuditRecordCountsOnce() throws {
        let b = Self.trails()[1]  // APP-B: one case, one breach
        let doubled = b.events.flatMap { [$0, $0] }
        let inputs = SLAReport.inputs(events: doubled, states: [], library: library, period: try ReportPeriod(from: "2026-03-02", to: "2026-03-02"),
                                      bundle: nil, skipped: SkipLog())
        #expect(inputs.count == 1 && inputs[0].events == b.events)
        let r = SLAReport(sagas: inputs, from: "2026-03-02", to: "2026-03-02", timeZone: "UTC+08:00", asOf: Self.tue(60))
        #expect(r.cases.count == 1 && r.breaches.count == 1 && r.bundles[0].figures.manualOpened == 1)
        #expect(r.sagas[0].operatorWorkingMs == 433 * Self.min)
    }

    @Test func csvIsRFC4180() throws {
        #expect(SLAReport.csvField("plain") == "plain")
        #expect(SLAReport.csvField("a,b") == "\"a,b\"")
        #expect(SLAReport.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(SLAReport.csvField("two\nlines") == "\"two\nlines\"")
        let r = Self.report()
        let text = r.csv(.figures)
        #expect(text.hasSuffix("\r\n"))
        let rows = try Self.parseCSV(text)
        #expect(rows[0] == ["level", "bundle", "agency", "step", "title", "count", "on_time", "late", "open", "on_time_pct", "p50_working_hours",
                            "p95_working_hours", "breaches", "manual_opened", "manual_resolved", "manual_handling_p50_working_hours",
                            "supplements_requested", "supplements_provided"])
        #expect(rows.count == 1 + r.bundles.count + r.agencies.count + r.steps.count)
        #expect(rows.allSatisfy { $0.count == 18 })
        #expect(rows[1] == ["bundle", "enterprise-opening", "", "", "开办企业", "5", "1", "3", "1", "25", "7.167", "7.833", "3", "1", "1", "7.217", "1", "1"])
        let cases = try Self.parseCSV(r.csv(.cases))
        // The case's detail holds a comma: quoted, and read back whole.
        #expect(cases.count == 2 && cases[1][0] == "APP-B" && cases[1][9].contains("registry down,"))
        let sagas = try Self.parseCSV(r.csv(.sagas))
        #expect(sagas.count == 6 && sagas[1][0] == "APP-A" && sagas[1][11] == String(12 * Self.min))
        let breaches = try Self.parseCSV(r.csv(.breaches))
        #expect(breaches.count == 4 && breaches.contains { $0[0] == "APP-C" && $0[6] == "hub" })
    }

    @Test func jsonShape() throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        let value = try JSONValue.parse(e.encode(Self.report()))
        guard case .object(let top) = value else { Issue.record("not an object"); return }
        #expect(Set(top.keys) == ["from", "to", "timeZone", "asOf", "bundles", "agencies", "steps", "breaches", "cases", "sagas"])
        #expect(value["from"] == "2026-03-02" && value["timeZone"] == "Asia/Shanghai (UTC+08:00)")
        #expect(value["bundles"]?.arrayValue?.first?["figures"]?["onTimePercent"] == .number(25))
        #expect(value["sagas"]?.arrayValue?.first?["hubWorkingMs"] == .number(Double(12 * Self.min)))
        #expect(value["breaches"]?.arrayValue?[1]["arose"]?.arrayValue?.first?["waitingOn"] == "hub")
    }

    @Test func textTablesAlignCJKColumns() throws {
        let text = Self.report().text(style: .plain)
        let lines = text.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.hasPrefix("BUNDLE ") && $0.contains("TITLE") && $0.contains("HUB %") })
        let row = try #require(lines.first { $0.hasPrefix("enterprise-opening  开办企业") })
        // COUNT starts where the count does, counting 开办企业 as 8 columns.
        let headerColumn = displayWidth(String(header[..<header.range(of: "COUNT")!.lowerBound]))
        let rowColumn = displayWidth(String(row[..<row.range(of: "5 (1 open)")!.lowerBound]))
        #expect(headerColumn == rowColumn, "\(header)\n\(row)")
        #expect(text.contains("Asia/Shanghai (UTC+08:00)") && text.contains("registration @ business-registration (operator)"))
    }

    @Test func htmlIsSelfContained() {
        let html = Self.report().html()
        for id in ["bundles", "agencies", "steps", "breaches", "cases", "sagas"] { #expect(html.contains("<table id=\"\(id)\">"), "\(id)") }
        for id in ["chart-ontime", "chart-steps", "chart-split", "chart-breaches"] { #expect(html.contains("<figure id=\"\(id)\">"), "\(id)") }
        #expect(html.contains("<svg") && html.contains("lang=\"zh-CN\"") && html.contains("按时办结率"))
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("url(") && !html.contains("@import") && !html.contains("href="))
        // The only URL is the SVG namespace (a name, never fetched).
        #expect(html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").range(of: "https?://", options: .regularExpression) == nil)
        #expect(!html.contains("13812345678"))
        #expect(SLAReport.esc("<a href='x'>&\"") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;")
    }

    /// A strict RFC 4180 reader: CRLF records, quoted fields with doubled quotes.
    static func parseCSV(_ text: String) throws -> [[String]] {
        struct Bad: Error { var at: Int }
        var rows: [[String]] = [], row: [String] = [], field = ""
        let chars = Array(text.unicodeScalars)
        var i = 0, quoted = false
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count, chars[i + 1] == "\"" { field.unicodeScalars.append("\""); i += 2; continue }
                    quoted = false; i += 1; continue
                }
                field.unicodeScalars.append(c); i += 1; continue
            }
            switch c {
            case "\"": guard field.isEmpty else { throw Bad(at: i) }; quoted = true; i += 1
            case ",": row.append(field); field = ""; i += 1
            case "\r":
                guard i + 1 < chars.count, chars[i + 1] == "\n" else { throw Bad(at: i) }
                row.append(field); rows.append(row); row = []; field = ""; i += 2
            case "\n": throw Bad(at: i)
            default: field.unicodeScalars.append(c); i += 1
            }
        }
        guard !quoted, row.isEmpty, field.isEmpty else { throw Bad(at: i) }
        return rows
    }
}
