import Foundation
import Operations
import SagaEngine
import Testing
import YishiTestSupport

/// The 督查 report's HTML as a browser shows it: headless Chromium (Debian's `chromium`, installed
/// by scripts/setup-chromium.sh on first use) renders it to `.build/sla-report/report.png` — kept
/// for people to look at — and dumps the DOM it built.
@Suite struct SLAReportBrowserTests {
    static let directory = repoRoot.appendingPathComponent(".build/sla-report")

    /// Runs `executable` with `arguments`; stdout, stderr and the exit status. Killed after `timeout` seconds.
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> Subprocess.Result {
        try Subprocess.run(URL(fileURLWithPath: executable), arguments, directory: repoRoot, timeout: timeout)
    }

    @Test(.timeLimit(.minutes(5)))  // the first run may install chromium; later runs take a few seconds
    func htmlReportRendersWithTablesAndCharts() throws {
        let setup = try Self.run("/bin/bash", ["scripts/setup-chromium.sh"], timeout: 280)
        try #require(setup.status == 0, "setup-chromium.sh: \(setup.err)")
        let chromium = setup.out.trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
        let page = Self.directory.appendingPathComponent("report.html"), shot = Self.directory.appendingPathComponent("report.png")
        try? FileManager.default.removeItem(at: shot)
        try Data(SLAReportTests.report().html().utf8).write(to: page)
        // No network: the page must not need it (a government intranet).
        let common = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
                      "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
        let render = try Self.run(chromium, common + ["--window-size=1200,1400", "--screenshot=" + shot.path, page.absoluteString])
        try #require(render.status == 0 && FileManager.default.fileExists(atPath: shot.path), "chromium --screenshot: \(render.err)")

        // Not blank: the bars' own colours are on the picture, and many shades (anti-aliased text).
        let stats = try Self.run("/usr/bin/env", ["python3", "scripts/png-stats.py", shot.path, "#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a",
                                                  "#c62828", "#b71c1c"])
        try #require(stats.status == 0, "png-stats.py: \(stats.err)")
        let facts = try JSONValue.parse(Data(stats.out.utf8))
        #expect(facts["width"] == 1200 && facts["height"] == 1400, "\(stats.out)")
        #expect(Self.number(facts["colours"]) >= 100, "\(stats.out)")
        #expect(Self.number(facts["nonWhite"]) >= 0.03, "\(stats.out)")
        // On-time bars green, P50 blue, P95 orange, the hub's share purple, breach bars red, the title rule dark red.
        for colour in ["#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#c62828", "#b71c1c"] {
            #expect(Self.number(facts["has"]?[colour]) >= 20, "\(colour) not drawn: \(stats.out)")
        }

        // The DOM the browser built: every table, with its rows.
        let dom = try Self.run(chromium, common + ["--dump-dom", page.absoluteString])
        try #require(dom.status == 0, "chromium --dump-dom: \(dom.err)")
        for (id, caption) in [("bundles", "按事项"), ("agencies", "按部门"), ("steps", "按环节"), ("breaches", "超时明细"), ("cases", "办不成事"),
                              ("sagas", "逐件时间去向")] {
            let table = try #require(Self.element("table", id: id, in: dom.out), "no table \(id) in the DOM")
            #expect(table.contains("<caption>" + caption), "\(id)")
            #expect(table.contains("<tbody>"), "\(id)")
        }
        let rows = { (id: String) in Self.element("table", id: id, in: dom.out)!.components(separatedBy: "<tr>").count - 2 }  // less header
        #expect(rows("bundles") == 1 && rows("steps") == 2 && rows("breaches") == 3 && rows("cases") == 1 && rows("sagas") == 5)
        #expect(Self.element("table", id: "breaches", in: dom.out)!.contains("registration（business-registration，待人工处理）"))
        for id in ["chart-ontime", "chart-steps", "chart-split", "chart-breaches"] {
            #expect(Self.element("figure", id: id, in: dom.out)?.contains("<svg") == true, "\(id)")
        }
        #expect(!dom.out.contains("<script"))
    }

    static func number(_ v: JSONValue?) -> Double { if case .number(let d)? = v { return d }; return 0 }

    /// `<tag id="id" …>…</tag>` in `html` (no nesting of the same tag).
    static func element(_ tag: String, id: String, in html: String) -> String? {
        guard let start = html.range(of: "<\(tag) id=\"\(id)\"") else { return nil }
        guard let end = html.range(of: "</\(tag)>", range: start.upperBound..<html.endIndex) else { return nil }
        return String(html[start.lowerBound..<end.upperBound])
    }
}
