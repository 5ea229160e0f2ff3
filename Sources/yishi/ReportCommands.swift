import Foundation
import Operations
import SagaEngine

var reportGroup: CommandGroup { CommandGroup(
    name: "report", summary: "督查 reports over the audit trail: SLA figures per bundle, agency and step.",
    commands: [SLAReportCommand.self]) }

enum SLAReportCommand: Command {
    static let name = "sla"
    static let summary = "on-time %, working-hour percentiles, breaches, 办不成事, 容缺 and hub overhead over a period"
    static let help = """
        Usage: yishi report sla --from DATE --to DATE [--bundle B] [--agency A] [--json|--csv [--table T]|--html FILE] [options]

        The 督查 (supervision) report, read from saga-events (the audit trail) and saga-state;
        it changes nothing. Sagas count when their SLA start falls on a day from --from to --to
        (both included) in the hub calendar's zone (Asia/Shanghai, UTC+08:00). Per bundle, agency
        and step: count, on-time %, p50/p95 working hours, breaches, 办不成事 cases opened and
        resolved with their handling time, 容缺 supplements asked for and handed in; each breach
        with the step and agency it arose at; per saga the working time spent at departments,
        waiting for the applicant, with operators and in the hub itself (orchestration overhead).
        Definitions: docs/cli.md.

        Options:
          --from DATE, --to DATE  the period, YYYY-MM-DD (required; --from not after --to)
          --bundle B             only bundle B (an id in the bundle directory)
          --agency A             only agency A's steps (sagas of bundles with a step there)
          --json                 the whole report as JSON
          --csv                  one RFC 4180 table on standard output (CRLF line ends)
          --table T              with --csv: figures (default; a row per bundle, agency and step),
                                 breaches, cases or sagas
          --html FILE            write one self-contained HTML file (inline SVG charts, Chinese
                                 labels, no scripts or fonts from elsewhere) and say where
        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let fromText = try args.option("--from"), toText = try args.option("--to")
        let bundle = try args.option("--bundle"), agency = try args.option("--agency")
        let csv = args.flag("--csv")
        let tableText = try args.option("--table")
        let htmlPath = try args.option("--html")
        let options = try OperatorOptions.read(&args)
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        guard let fromText else { throw UsageError("--from DATE is required (YYYY-MM-DD)") }
        guard let toText else { throw UsageError("--to DATE is required (YYYY-MM-DD)") }
        let period: ReportPeriod
        do { period = try ReportPeriod(from: fromText, to: toText) } catch let p as ReportPeriod.Problem { throw UsageError(p.message) }
        if [options.json, csv, htmlPath != nil].filter({ $0 }).count > 1 { throw UsageError("choose one of --json, --csv and --html") }
        var table = SLAReport.CSVTable.figures
        if let tableText {
            guard csv else { throw UsageError("--table goes with --csv") }
            guard let t = SLAReport.CSVTable(rawValue: tableText) else {
                throw UsageError("--table '\(tableText)': expected one of \(SLAReport.CSVTable.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            table = t
        }
        if let htmlPath { try prepareOutputFile(URL(fileURLWithPath: htmlPath), setting: "--html") }
        let library = try env.library()
        let known = Set(library.bundles.map(\.id))
        if let bundle, !known.contains(bundle) {
            throw UsageError("--bundle: unknown bundle '\(bundle)' (known in \(env.bundlesDir.path): \(known.sorted().joined(separator: ", ")))")
        }
        let agencies = Set(library.bundles.flatMap { $0.steps.map(\.agency) })
        if let agency, !agencies.contains(agency) {
            throw UsageError("--agency: unknown agency '\(agency)' (agencies with steps: \(agencies.sorted().joined(separator: ", ")))")
        }

        let skipped = SkipLog()
        let hub = options.hub
        let changelog = Changelog(hub: hub, skipped: skipped)
        let states = try changelog.allStates()
        let events = try SLAReport.readAudit(hub: hub, skipped: skipped)
        let inputs = SLAReport.inputs(events: events, states: states, library: library, period: period, bundle: bundle, skipped: skipped)
        let report = SLAReport(sagas: inputs, from: period.from.description, to: period.to.description,
                               timeZone: zoneLabel(library: library, env: env), asOf: options.now, bundle: bundle, agency: agency,
                               agencyTitles: library.catalogues.agencies.mapValues(\.title))
        for line in skipped.all { printError("note: \(line)") }
        if let htmlPath {
            let url = URL(fileURLWithPath: htmlPath)
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(report.html().utf8).write(to: url, options: .atomic)
            } catch {
                throw UsageError("--html: cannot write \(htmlPath): \(plainWords(error))")
            }
            print("督查 report (\(report.sagas.count) saga(s), \(period.from) → \(period.to)) written to \(url.path)")
        } else if csv {
            FileHandle.standardOutput.write(Data(report.csv(table).utf8))
        } else {
            try options.emit(report) { report.text(style: options.style) }
        }
        return Exit.ok
    }

    /// `Asia/Shanghai (UTC+08:00)`: the zone of the calendars the bundles use, from their files.
    static func zoneLabel(library: BundleLibrary, env: Environment) -> String {
        guard let name = library.bundles.first?.definition.sla.calendar, let calendar = library.calendars[name] else { return "UTC+08:00" }
        let minutes = Int(calendar.offsetMs / 60_000)
        let offset = String(format: "UTC%@%02d:%02d", minutes < 0 ? "-" : "+", abs(minutes) / 60, abs(minutes) % 60)
        let file = env.calendarsDir.appendingPathComponent(name + ".json")
        guard let data = try? Data(contentsOf: file), let parsed = try? JSONDecoder().decode(CalendarFile.self, from: data) else { return offset }
        return "\(parsed.timeZone) (\(offset))"
    }
}
