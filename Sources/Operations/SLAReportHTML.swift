import Foundation
import Messaging
import SagaEngine

extension SLAReport {
    /// The report as one self-contained HTML5 file (UTF-8): inline CSS, inline SVG charts, no
    /// scripts, fonts or images from anywhere else, so it opens on a government intranet.
    /// Chinese labels. Tables carry ids: `bundles`, `agencies`, `steps`, `breaches`, `cases`,
    /// `sagas`; charts: `chart-ontime`, `chart-steps`, `chart-split`, `chart-breaches`.
    public func html() -> String {
        var body: [String] = []
        let scope = (bundleFilter.map { " · 事项 \(Self.esc($0))" } ?? "") + (agencyFilter.map { " · 部门 \(Self.esc($0))" } ?? "")
        body.append("<h1>“一件事一次办”督查报告 · 办理时限（SLA）</h1>")
        body.append("<p class=\"meta\">统计期间 \(from) 至 \(to)（\(Self.esc(timeZone))，按受理时间）\(scope) · 生成于 \(LocalTime.full(asOf)) · "
                    + "共 \(sagas.count) 件 · 时长均为工作时间（小时，按各事项的工作日历）</p>")

        // Charts.
        body.append("<section class=\"charts\">")
        body.append(Self.figure(id: "chart-ontime", title: "各事项按时办结率（%）",
                                svg: Self.bars(bundles.map { ($0.title, [$0.figures.onTimePercent ?? 0]) }, max: 100, unit: "%",
                                               colours: ["#2e7d32"])))
        body.append(Self.figure(id: "chart-steps", title: "各环节办理时长 P50 / P95（工作小时）",
                                svg: Self.bars(steps.map { ("\(Self.title(of: $0.bundle, in: bundles)) · \($0.title)",
                                                             [$0.figures.p50WorkingHours ?? 0, $0.figures.p95WorkingHours ?? 0]) },
                                               max: nil, unit: "h", colours: ["#1565c0", "#ef6c00"], legend: ["P50", "P95"])))
        body.append(Self.figure(id: "chart-split", title: "时间去向：部门办理 / 申请人补正（容缺）/ 人工处理（办不成事）/ 枢纽编排开销",
                                svg: Self.stacked(bundles.map { ($0.title, [$0.departmentWorkingHours, $0.applicantWorkingHours,
                                                                            $0.operatorWorkingHours, $0.hubWorkingHours]) },
                                                  colours: ["#1565c0", "#f9a825", "#c62828", "#6a1b9a"],
                                                  legend: ["部门办理", "申请人补正", "人工处理", "枢纽开销"])))
        var arose: [String: Int] = [:]
        for b in breaches { for h in b.arose { arose[h.step.map { "\($0)（\(h.agency ?? "?")）" } ?? "枢纽（无环节在办）", default: 0] += 1 } }
        body.append(Self.figure(id: "chart-breaches", title: "超时发生环节（件次）",
                                svg: arose.isEmpty ? Self.note("统计期间无超时") :
                                    Self.bars(arose.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, [Double($0.value)]) },
                                              max: nil, unit: "", colours: ["#c62828"])))
        body.append("</section>")

        // Tables.
        let fig = ["件数", "按时", "超时", "在办", "按时率 %", "P50 工作小时", "P95 工作小时", "超时件次", "办不成事 开启", "已处理", "处理时长 P50", "容缺 补正要求", "已补正"]
        func cells(_ f: Figures) -> [String] {
            [String(f.count), String(f.onTime), String(f.late), String(f.open), f.onTimePercent.map(Self.num) ?? "-",
             f.p50WorkingHours.map(Self.num) ?? "-", f.p95WorkingHours.map(Self.num) ?? "-", String(f.breaches), String(f.manualOpened),
             String(f.manualResolved), f.manualHandlingP50WorkingHours.map(Self.num) ?? "-", String(f.supplementsRequested),
             String(f.supplementsProvided)]
        }
        body.append(Self.table(id: "bundles", caption: "按事项",
                               headers: ["事项", "名称"] + fig + ["部门 h", "申请人 h", "人工 h", "枢纽 h", "枢纽占比 %"],
                               rows: bundles.map { b in
                                   [b.bundle, b.title] + cells(b.figures) + [Self.num(b.departmentWorkingHours), Self.num(b.applicantWorkingHours),
                                                                             Self.num(b.operatorWorkingHours), Self.num(b.hubWorkingHours),
                                                                             b.hubPercent.map(Self.num) ?? "-"]
                               }))
        body.append(Self.table(id: "agencies", caption: "按部门", headers: ["部门", "名称"] + fig,
                               rows: agencies.map { [$0.agency, $0.title] + cells($0.figures) }))
        body.append(Self.table(id: "steps", caption: "按环节（时限 = 该环节单次办理时限）", headers: ["事项", "环节", "名称", "部门", "时限 h"] + fig,
                               rows: steps.map { [$0.bundle, $0.step, $0.title, $0.agency, Self.num($0.budgetWorkingHours)] + cells($0.figures) }))
        body.append(Self.table(id: "breaches", caption: "超时明细（发生于超时时刻正在办理的环节）", headers: ["申请", "事项", "办结时限", "超时时刻", "发生环节"],
                               rows: breaches.map { b in
                                   [b.sagaId, b.bundle, LocalTime.full(b.deadline), LocalTime.full(b.breachedAt),
                                    b.arose.map { h in h.step.map { "\($0)（\(h.agency ?? "?")，\(Self.waitingOn(h.waitingOn))）" } ?? "枢纽（无环节在办）" }
                                        .joined(separator: "；")]
                               }, empty: "统计期间无超时"))
        body.append(Self.table(id: "cases", caption: "办不成事（人工处理）", headers: ["申请", "环节", "部门", "类型", "开启", "处理", "方式", "处理时长 h"],
                               rows: cases.map { c in
                                   [c.sagaId, c.step, c.agency, c.kind == "forward" ? "办理" : "撤销", LocalTime.full(c.openedAt),
                                    c.resolvedAt.map { LocalTime.full($0) } ?? "未处理", Self.resolution(c.resolution), Self.num(c.handlingWorkingHours)]
                               }, empty: "统计期间无办不成事"))
        body.append(Self.table(id: "sagas", caption: "逐件时间去向（工作时间）",
                               headers: ["申请", "事项", "状态", "时限", "总用时", "部门办理", "申请人补正", "人工处理", "枢纽开销", "容缺", "办不成事"],
                               rows: sagas.map { r in
                                   [r.sagaId, r.bundle, r.status, r.sla == "onTime" ? "按时" : (r.sla == "late" ? "超时" : "在办"),
                                    WorkingTime(ms: r.elapsedWorkingMs).description, WorkingTime(ms: r.departmentWorkingMs).description,
                                    WorkingTime(ms: r.applicantWorkingMs).description, WorkingTime(ms: r.operatorWorkingMs).description,
                                    WorkingTime(ms: r.hubWorkingMs).description, String(r.supplementsRequested), String(r.manualCases)]
                               }, empty: "统计期间无申请"))
        body.append("<p class=\"meta\">口径：按时率 = 按时 ÷（按时 + 超时），在办不计；百分位为最近秩法；环节“按时”指首次派发至办结的工作时间（扣除申请人补正等待）不超过该环节时限；"
                    + "超时归属于超时时刻仍在部门办理、等待申请人补正或待人工处理的环节，均无则记为枢纽；枢纽开销 = 总用时中既不在部门、也不在等申请人或人工处理的时间。</p>")
        return """
            <!DOCTYPE html>
            <html lang="zh-CN">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>督查报告 \(from) 至 \(to)</title>
            <style>
            body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "SimHei", "WenQuanYi Micro Hei", sans-serif;
                   margin: 24px; color: #212121; background: #ffffff; }
            h1 { font-size: 22px; color: #b71c1c; border-bottom: 3px solid #b71c1c; padding-bottom: 6px; }
            .meta { color: #555; font-size: 13px; }
            .charts { display: flex; flex-wrap: wrap; gap: 16px; }
            figure { margin: 0; padding: 8px; border: 1px solid #ddd; background: #fafafa; }
            figcaption { font-weight: bold; font-size: 14px; margin-bottom: 4px; }
            table { border-collapse: collapse; margin: 12px 0 20px; font-size: 12px; }
            caption { text-align: left; font-weight: bold; font-size: 15px; padding: 4px 0; }
            th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; white-space: nowrap; }
            th { background: #eceff1; }
            td.n { text-align: right; }
            .wide { overflow-x: auto; max-width: 100%; }
            @media print { body { margin: 0; } .wide { overflow: visible; } figure, tr { break-inside: avoid; } }
            tr:nth-child(even) td { background: #f5f5f5; }
            </style>
            </head>
            <body>
            \(body.joined(separator: "\n"))
            </body>
            </html>

            """
    }

    static func title(of bundle: String, in rows: [BundleRow]) -> String { rows.first { $0.bundle == bundle }?.title ?? bundle }

    static func waitingOn(_ s: String) -> String {
        switch s { case "department": "部门办理中"; case "applicant": "等待申请人补正"; case "operator": "待人工处理"; default: "枢纽" }
    }

    static func resolution(_ s: String?) -> String {
        switch s { case "stepRetried": "重试"; case "stepSkipped": "跳过"; case "stepResolvedManually": "人工办结"; case nil: "-"; default: s! }
    }

    /// Text for HTML element content and attribute values.
    public static func esc(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    static func table(id: String, caption: String, headers: [String], rows: [[String]], empty: String? = nil) -> String {
        var out = "<div class=\"wide\"><table id=\"\(id)\">\n<caption>\(esc(caption))</caption>\n<thead><tr>"
        out += headers.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        if rows.isEmpty, let empty { out += "<tr><td colspan=\"\(headers.count)\">\(esc(empty))</td></tr>\n" }
        // Figures right-aligned, words left-aligned.
        for r in rows {
            out += "<tr>" + r.map { Double($0) != nil || $0 == "-" ? "<td class=\"n\">\(esc($0))</td>" : "<td>\(esc($0))</td>" }.joined() + "</tr>\n"
        }
        return out + "</tbody>\n</table></div>"
    }

    static func figure(id: String, title: String, svg: String) -> String {
        "<figure id=\"\(id)\"><figcaption>\(esc(title))</figcaption>\n\(svg)\n</figure>"
    }

    static func note(_ text: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"420\" height=\"40\" role=\"img\"><text x=\"10\" y=\"25\" font-size=\"14\" fill=\"#2e7d32\">\(esc(text))</text></svg>"
    }

    /// Horizontal bars, one group per label, one bar per series; `max` nil = the largest value.
    static func bars(_ rows: [(String, [Double])], max maximum: Double?, unit: String, colours: [String], legend: [String] = []) -> String {
        guard !rows.isEmpty else { return note("无数据") }
        let series = rows.map(\.1.count).max() ?? 1
        let labelWidth = 20 + 7 * (rows.map { displayWidth($0.0) }.max() ?? 10), barArea = 320, barHeight = 14
        let top = legend.isEmpty ? 8 : 28
        let groupHeight = series * barHeight + 8
        let height = top + rows.count * groupHeight + 8
        let top1 = maximum ?? Swift.max(rows.flatMap(\.1).max() ?? 1, 0.001)
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(labelWidth + barArea + 80)\" height=\"\(height)\" role=\"img\" font-size=\"12\">"
        for (i, name) in legend.enumerated() {
            out += "<rect x=\"\(labelWidth + i * 80)\" y=\"6\" width=\"12\" height=\"12\" fill=\"\(colours[i % colours.count])\"/>"
            out += "<text x=\"\(labelWidth + i * 80 + 16)\" y=\"16\">\(esc(name))</text>"
        }
        for (r, (label, values)) in rows.enumerated() {
            let y = top + r * groupHeight
            out += "<text x=\"\(labelWidth - 6)\" y=\"\(y + groupHeight / 2 + 2)\" text-anchor=\"end\">\(esc(label))</text>"
            for (s, v) in values.enumerated() {
                let w = Int((Swift.max(0, v) / top1 * Double(barArea)).rounded())
                let by = y + s * barHeight
                out += "<rect x=\"\(labelWidth)\" y=\"\(by)\" width=\"\(Swift.max(w, 1))\" height=\"\(barHeight - 2)\" fill=\"\(colours[s % colours.count])\"/>"
                out += "<text x=\"\(labelWidth + w + 4)\" y=\"\(by + barHeight - 4)\">\(num(v))\(unit)</text>"
            }
        }
        return out + "</svg>"
    }

    /// 100 % stacked horizontal bars, one per label.
    static func stacked(_ rows: [(String, [Double])], colours: [String], legend: [String]) -> String {
        guard !rows.isEmpty else { return note("无数据") }
        let labelWidth = 20 + 7 * (rows.map { displayWidth($0.0) }.max() ?? 10), barArea = 360, barHeight = 20
        let height = 30 + rows.count * (barHeight + 8) + 8
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(labelWidth + barArea + 20)\" height=\"\(height)\" role=\"img\" font-size=\"12\">"
        for (i, name) in legend.enumerated() {
            out += "<rect x=\"\(labelWidth + i * 90)\" y=\"6\" width=\"12\" height=\"12\" fill=\"\(colours[i % colours.count])\"/>"
            out += "<text x=\"\(labelWidth + i * 90 + 16)\" y=\"16\">\(esc(name))</text>"
        }
        for (r, (label, values)) in rows.enumerated() {
            let y = 30 + r * (barHeight + 8)
            let total = values.reduce(0, +)
            out += "<text x=\"\(labelWidth - 6)\" y=\"\(y + barHeight / 2 + 4)\" text-anchor=\"end\">\(esc(label))</text>"
            guard total > 0 else {
                out += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(barArea)\" height=\"\(barHeight)\" fill=\"#e0e0e0\"/>"
                continue
            }
            var x = 0.0
            for (s, v) in values.enumerated() where v > 0 {
                let w = v / total * Double(barArea)
                let pct = v / total * 100
                out += "<rect x=\"\(labelWidth + Int(x.rounded()))\" y=\"\(y)\" width=\"\(Swift.max(1, Int(w.rounded())))\" height=\"\(barHeight)\" "
                    + "fill=\"\(colours[s % colours.count])\"><title>\(esc(legend[s])) \(num(round(pct, 1)))%</title></rect>"
                if w > 34 {
                    out += "<text x=\"\(labelWidth + Int((x + w / 2).rounded()))\" y=\"\(y + barHeight - 6)\" text-anchor=\"middle\" fill=\"#fff\">\(num(round(pct, 0)))%</text>"
                }
                x += w
            }
        }
        return out + "</svg>"
    }
}
