import Foundation
import SagaEngine

extension SLAReport {
    // MARK: - plain text

    /// Aligned tables (CJK characters count two columns): bundles, agencies, steps, breaches,
    /// 办不成事 cases and the per-saga time split.
    public func text(style: Style) -> String {
        var out: [String] = []
        out.append(style.paint("督查 SLA report · \(from) → \(to), days in \(timeZone) · as of \(LocalTime.full(asOf))", .bold)
                   + (bundleFilter.map { " · bundle \($0)" } ?? "") + (agencyFilter.map { " · agency \($0)" } ?? ""))
        out.append("")
        var t = Table(["BUNDLE", "TITLE"] + Self.figureHeaders + ["DEPT H", "APPLICANT H", "OPERATOR H", "HUB H", "HUB %"])
        for b in bundles {
            t.add([Cell(b.bundle), Cell(b.title)] + Self.figureCells(b.figures)
                  + [Cell(Self.num(b.departmentWorkingHours)), Cell(Self.num(b.applicantWorkingHours)), Cell(Self.num(b.operatorWorkingHours)),
                     Cell(Self.num(b.hubWorkingHours)), Cell(b.hubPercent.map(Self.num) ?? "-")])
        }
        out.append(t.render(style))
        out.append("")
        var a = Table(["AGENCY", "TITLE"] + Self.figureHeaders)
        for r in agencies { a.add([Cell(r.agency), Cell(r.title)] + Self.figureCells(r.figures)) }
        out.append(a.render(style))
        out.append("")
        var s = Table(["BUNDLE", "STEP", "AGENCY", "BUDGET H"] + Self.figureHeaders)
        for r in steps { s.add([Cell(r.bundle), Cell(r.step), Cell(r.agency), Cell(Self.num(r.budgetWorkingHours))] + Self.figureCells(r.figures)) }
        out.append(s.render(style))
        out.append("")
        if breaches.isEmpty { out.append("Breaches: none") } else {
            var t = Table(["SAGA", "BUNDLE", "DEADLINE", "BREACHED", "AROSE AT"])
            for b in breaches {
                t.add([Cell(b.sagaId), Cell(b.bundle), Cell(LocalTime.full(b.deadline)), Cell(LocalTime.full(b.breachedAt), .red),
                       Cell(b.arose.map(Self.describe).joined(separator: "; "))])
            }
            out.append(t.render(style))
        }
        out.append("")
        if cases.isEmpty { out.append("办不成事 cases: none") } else {
            var t = Table(["SAGA", "STEP", "AGENCY", "KIND", "OPENED", "RESOLVED", "HOW", "HANDLING H"])
            for c in cases {
                t.add([Cell(c.sagaId), Cell(c.step), Cell(c.agency), Cell(c.kind), Cell(LocalTime.full(c.openedAt)),
                       Cell(c.resolvedAt.map { LocalTime.full($0) } ?? "open", c.resolvedAt == nil ? .yellow : nil), Cell(c.resolution ?? "-"),
                       Cell(Self.num(c.handlingWorkingHours))])
            }
            out.append(t.render(style))
        }
        out.append("")
        var g = Table(["SAGA", "BUNDLE", "STATUS", "SLA", "ELAPSED", "DEPARTMENTS", "APPLICANT", "OPERATOR", "HUB", "容缺", "CASES"])
        for r in sagas {
            g.add([Cell(r.sagaId), Cell(r.bundle), Cell(r.status), Cell(r.sla, r.sla == "late" ? .red : (r.sla == "onTime" ? .green : nil)),
                   Cell(WorkingTime(ms: r.elapsedWorkingMs).description), Cell(WorkingTime(ms: r.departmentWorkingMs).description),
                   Cell(WorkingTime(ms: r.applicantWorkingMs).description), Cell(WorkingTime(ms: r.operatorWorkingMs).description),
                   Cell(WorkingTime(ms: r.hubWorkingMs).description), Cell(String(r.supplementsRequested)), Cell(String(r.manualCases))])
        }
        out.append(g.render(style))
        out.append("")
        out.append(style.paint("\(sagas.count) saga(s) with their SLA start in the period; H = working hours on the bundle's business calendar; "
                               + "on-time % over decided sagas (open ones left out); percentiles nearest-rank; HUB = orchestration overhead", .dim))
        return out.joined(separator: "\n")
    }

    static let figureHeaders = ["COUNT", "ON TIME %", "P50 H", "P95 H", "BREACHES", "CASES OPENED", "RESOLVED", "HANDLING P50 H", "容缺 ASKED", "HANDED IN"]

    static func figureCells(_ f: Figures) -> [Cell] {
        let pct = f.onTimePercent.map { Self.num($0) } ?? "-"
        return [Cell(String(f.count) + (f.open > 0 ? " (\(f.open) open)" : "")),
                Cell(pct, f.onTimePercent.map { $0 < 99 ? .red : .green }), Cell(f.p50WorkingHours.map(Self.num) ?? "-"),
                Cell(f.p95WorkingHours.map(Self.num) ?? "-"), Cell(String(f.breaches), f.breaches > 0 ? .red : nil),
                Cell(String(f.manualOpened)), Cell(String(f.manualResolved)), Cell(f.manualHandlingP50WorkingHours.map(Self.num) ?? "-"),
                Cell(String(f.supplementsRequested)), Cell(String(f.supplementsProvided))]
    }

    static func describe(_ h: Holder) -> String {
        guard let step = h.step else { return "hub (nothing open)" }
        return "\(step) @ \(h.agency ?? "?") (\(h.waitingOn))"
    }

    /// Up to 3 decimals, without trailing zeros: `1.5`, `0.125`, `12`.
    static func num(_ x: Double) -> String {
        var s = String(format: "%.3f", x)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    // MARK: - CSV (RFC 4180)

    /// The tables `--csv` can print.
    public enum CSVTable: String, CaseIterable, Sendable { case figures, breaches, cases, sagas }

    /// One RFC 4180 table: CRLF line ends, a header row, fields quoted when they hold a comma,
    /// a double quote, CR or LF (quotes doubled). `figures` has one row per bundle, agency and
    /// step (`level` says which); times are working hours, instants RFC 3339 with the zone offset.
    public func csv(_ table: CSVTable = .figures) -> String {
        var rows: [[String]] = []
        func opt(_ d: Double?) -> String { d.map(Self.num) ?? "" }
        func f(_ x: Figures) -> [String] {
            [String(x.count), String(x.onTime), String(x.late), String(x.open), opt(x.onTimePercent), opt(x.p50WorkingHours), opt(x.p95WorkingHours),
             String(x.breaches), String(x.manualOpened), String(x.manualResolved), opt(x.manualHandlingP50WorkingHours),
             String(x.supplementsRequested), String(x.supplementsProvided)]
        }
        let time: (Instant) -> String = { $0.rfc3339(offsetMinutes: 480) }
        switch table {
        case .figures:
            rows.append(["level", "bundle", "agency", "step", "title", "count", "on_time", "late", "open", "on_time_pct", "p50_working_hours",
                         "p95_working_hours", "breaches", "manual_opened", "manual_resolved", "manual_handling_p50_working_hours",
                         "supplements_requested", "supplements_provided"])
            for b in bundles { rows.append(["bundle", b.bundle, "", "", b.title] + f(b.figures)) }
            for a in agencies { rows.append(["agency", "", a.agency, "", a.title] + f(a.figures)) }
            for s in steps { rows.append(["step", s.bundle, s.agency, s.step, s.title] + f(s.figures)) }
        case .breaches:
            rows.append(["saga", "bundle", "deadline", "breached_at", "step", "agency", "waiting_on"])
            for b in breaches {
                for h in b.arose { rows.append([b.sagaId, b.bundle, time(b.deadline), time(b.breachedAt), h.step ?? "", h.agency ?? "", h.waitingOn]) }
            }
        case .cases:
            rows.append(["saga", "bundle", "step", "agency", "kind", "opened_at", "resolved_at", "resolution", "handling_working_hours", "detail"])
            for c in cases {
                rows.append([c.sagaId, c.bundle, c.step, c.agency, c.kind, time(c.openedAt), c.resolvedAt.map(time) ?? "", c.resolution ?? "",
                             Self.num(c.handlingWorkingHours), c.detail ?? ""])
            }
        case .sagas:
            rows.append(["saga", "bundle", "status", "sla", "sla_start", "deadline", "finished_at", "elapsed_working_ms", "department_working_ms",
                         "applicant_working_ms", "operator_working_ms", "hub_working_ms", "supplements_requested", "manual_cases"])
            for r in sagas {
                rows.append([r.sagaId, r.bundle, r.status, r.sla, time(r.slaStart), time(r.deadline), r.finishedAt.map(time) ?? "",
                             String(r.elapsedWorkingMs), String(r.departmentWorkingMs), String(r.applicantWorkingMs), String(r.operatorWorkingMs),
                             String(r.hubWorkingMs), String(r.supplementsRequested), String(r.manualCases)])
            }
        }
        return rows.map { $0.map(Self.csvField).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    /// One RFC 4180 field: quoted (quotes doubled) when it holds `,`, `"`, CR or LF.
    public static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
