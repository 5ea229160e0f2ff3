import Foundation
import SagaEngine

var bundlesGroup: CommandGroup { CommandGroup(
    name: "bundles", summary: "Inspect and validate bundle definitions (one-stop service bundles).",
    commands: [ValidateBundles.self, ListBundles.self, ShowBundle.self]) }

enum ValidateBundles: Command {
    static let name = "validate"
    static let summary = "check bundle files against the agency catalogues; print every problem"
    static let help = """
        Usage: yishi bundles validate [FILE...] [--at T]

        Validates each FILE (default: every *.json in the bundle directory) and prints every
        problem as `file: $.json.path: message`. It also checks the business calendar as of T
        (RFC 3339; default: the hub clock, --clock-start… or real time): a saga submitted at T
        whose deadline reaches a year the calendar does not cover is a problem; a provisional
        year is a warning on stderr.
        Exit codes: 0 all valid; 1 a problem was found in a bundle; 2 usage, or a catalogue or
        calendar that cannot be read (one line naming the file and the JSON path or line and column).
          --at T                 the submission instant to check the calendar for
        \(ClockOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        var at: Instant?
        if let text = try args.option("--at") {
            guard let i = Instant(rfc3339: text) else { throw UsageError("--at: '\(text)' is not RFC 3339 with an offset") }
            at = i
        }
        let now = try at ?? ClockOptions.read(&args, env).now()
        var files = try args.positionals().map { URL(fileURLWithPath: $0) }
        let lib = try env.library()
        let directory = (try? BundleLibrary.jsonFiles(in: env.bundlesDir)) ?? []
        if files.isEmpty { files = directory }
        guard !files.isEmpty else { throw UsageError("no bundle files given and none in \(env.bundlesDir.path)") }
        // A file may extend a version in the bundle directory.
        let checked = BundleLibrary.load(files: files, catalogues: lib.catalogues, calendars: lib.calendars,
                                         eventSchemas: lib.eventSchemas, bases: directory)
        let coverage = checked.calendarCoverage(at: now)
        let problems = checked.problems + coverage.problems
        for p in problems { print(p.description) }
        for w in coverage.warnings { printError("warning: " + w) }
        let bad = Set(problems.map(\.file)).count
        printError("\(files.count) file(s): \(files.count - bad) valid, \(bad) with problems (\(problems.count) problem(s))")
        return problems.isEmpty ? Exit.ok : Exit.problems
    }
}

enum ListBundles: Command {
    static let name = "list"
    static let summary = "list every valid bundle version"
    static let help = """
        Usage: yishi bundles list [--json]

        Lists id, version, step count, SLA and title of every valid bundle in the bundle directory;
        `*` marks the version new applications get. Invalid files are reported on stderr. --json
        adds each version's fingerprint (SHA-256 of its canonical content; running sagas keep it).
        Exit codes: 0 listed; 2 usage, or a catalogue or calendar that cannot be read (one line naming
        the file and the JSON path or line and column).
        """

    struct Row: Encodable {
        var id: String; var version: Int; var newest: Bool; var title: String; var steps: Int; var slaWorkingDays: Double; var calendar: String
        /// `CompiledBundle.fingerprint`: what running sagas of this version must match.
        var fingerprint: String
    }

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let json = args.flag("--json")
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let lib = try env.library()
        for p in lib.problems { printError("warning: " + p.description) }
        let rows = lib.bundles.map { b in
            Row(id: b.id, version: b.version, newest: lib.newest(b.id) === b, title: b.definition.title, steps: b.steps.count,
                slaWorkingDays: b.definition.sla.workingDays, calendar: b.definition.sla.calendar, fingerprint: b.fingerprint)
        }
        if json { try printJSON(rows); return Exit.ok }
        let w = max(2, rows.map(\.id.count).max() ?? 0)
        print("ID".padding(toLength: w + 2, withPad: " ", startingAt: 0) + "VER  STEPS  SLA        TITLE")
        for r in rows {
            let sla = "\(formatDays(r.slaWorkingDays))wd".padding(toLength: 11, withPad: " ", startingAt: 0)
            print(r.id.padding(toLength: w + 2, withPad: " ", startingAt: 0) + "v\(r.version)\(r.newest ? "*" : " ")".padding(toLength: 5, withPad: " ", startingAt: 0)
                + String(r.steps).padding(toLength: 7, withPad: " ", startingAt: 0) + sla + r.title)
        }
        return Exit.ok
    }
}

enum ShowBundle: Command {
    static let name = "show"
    static let summary = "show one bundle: its DAG by level, policies and SLA"
    static let help = """
        Usage: yishi bundles show ID [--version N] [--json | --format text|mermaid|dot]

        Draws the bundle's DAG level by level (steps on one level run in parallel; `← a, b`
        names a step's predecessors) with agency, action, timeout, retry and failure policy, and
        each step's input fields with where they come from: the names `yishi sagas retry --set
        NAME=…` accepts. A bundle composed over another says which (`extends`).
        Default version: the newest. --json prints the validated definition (defaults folded in,
        `extends` resolved). --format mermaid prints a Mermaid flowchart, --format dot a Graphviz
        digraph of the DAG, for docs and wikis (e.g. `| dot -Tsvg > dag.svg`).
        Exit codes: 0 shown; 1 no such bundle or version; 2 usage, or a catalogue or calendar that
        cannot be read (one line naming the file and the JSON path or line and column).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let json = args.flag("--json")
        let versionText = try args.option("--version")
        let format = try args.option("--format") ?? "text"
        guard ["text", "mermaid", "dot"].contains(format) else { throw UsageError("--format: want text, mermaid or dot (got '\(format)')") }
        let rest = try args.positionals()
        guard rest.count == 1 else { throw UsageError("expected exactly one bundle ID") }
        var version: Int?
        if let versionText {
            guard let v = Int(versionText) else { throw UsageError("--version needs a whole number") }
            version = v
        }
        let lib = try env.library()
        guard let b = version.map({ lib.bundle(rest[0], version: $0) }) ?? lib.newest(rest[0]) else {
            printError("no valid bundle \(rest[0])\(version.map { " v\($0)" } ?? "") in \(env.bundlesDir.path)")
            return Exit.problems
        }
        if json { try printJSON(b.definition); return Exit.ok }
        switch format {
        case "mermaid": print(b.mermaid)
        case "dot": print(b.dot)
        default: print(render(b))
        }
        return Exit.ok
    }

    static func render(_ b: CompiledBundle) -> String {
        let d = b.definition
        var out = ["\(d.id) v\(d.version) — \(d.title)"]
        if let desc = d.description { out.append(desc) }
        if let base = d.extends { out.append("Extends \(base.bundle) v\(base.version)") }
        out.append("SLA: \(formatDays(d.sla.workingDays)) working day(s) on calendar \(d.sla.calendar); at risk with \(d.sla.atRiskRemaining) left")
        if let t = d.trigger {
            let when = t.when.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.text())" }.joined(separator: ", ")
            out.append("Starts from (免申即享, orchestrator --triggers): \(t.type) on \(t.topic) when \(when); one saga per \(t.key ?? "event id")")
        }
        out.append("")
        let w = b.steps.map(\.id.count).max() ?? 0
        for (level, members) in b.levels.enumerated() {
            out.append("level \(level)\(members.count > 1 ? " (parallel)" : "")")
            for i in members {
                let s = b.steps[i], def = d.steps[i]
                let preds = s.predecessors.map { b.steps[$0].id }
                var line = "  " + s.id.padding(toLength: w + 2, withPad: " ", startingAt: 0) + "\(s.agency) · \(s.action)"
                if !preds.isEmpty { line += "  ← " + preds.joined(separator: ", ") }
                out.append(line)
                var policy = def.wait.map { "      waits \($0.days) \($0.calendar.rawValue) days; an objection opens a 办不成事 case" }
                    ?? "      timeout \(def.timeout), \(def.retry.attempts) tries, on failure \(def.onFailure.rawValue)"
                if let c = s.compensationAction { policy += ", undo \(c)" }
                if !def.deferrableMaterials.isEmpty { policy += ", 容缺 " + def.deferrableMaterials.joined(separator: ", ") }
                out.append(policy)
                let inputs = b.inputFields(of: i).map { "\($0.field) ← \($0.source)" }
                if !inputs.isEmpty { out.append("      input: " + inputs.joined(separator: "; ")) }
            }
        }
        return out.joined(separator: "\n")
    }
}

func formatDays(_ d: Double) -> String { d.rounded() == d ? String(Int(d)) : String(d) }
