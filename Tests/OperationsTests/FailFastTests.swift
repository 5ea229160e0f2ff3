import Foundation
import Testing
import YishiTestSupport

/// Every service and command checks its paths, files and settings at start-up and refuses with
/// one line naming them (exit 2), with no Foundation or librdkafka text. The built `yishi`
/// binary as a subprocess; no broker (an address nothing listens on), so each case takes well
/// under a second.
@Suite("Fail fast, in people's words")
struct FailFastTests {
    /// No broker listens here: a command that got as far as connecting would fail differently.
    static let nowhere = "127.0.0.1:9"

    let yishi: YishiCommand
    let scratch: URL

    init() throws {
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("YISHI_") { env.removeValue(forKey: key) }
        env["YISHI_BOOTSTRAP"] = Self.nowhere
        yishi = try YishiCommand(repoRoot: repoRoot, environment: env)
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("yishi-failfast-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    /// Runs `arguments` and checks the refusal: `status`, one line on stderr containing every
    /// `naming` text, nothing raw from Foundation or librdkafka, and no service start.
    @discardableResult
    func refuses(_ arguments: [String], status: Int32 = 2, naming: [String], within seconds: Double = 5,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let started = ContinuousClock.now
        let result = try yishi.run(arguments)
        let took = (ContinuousClock.now - started).seconds
        let lines = result.err.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(result.status == status, "\(arguments): \(result)", sourceLocation: sourceLocation)
        #expect(lines.count == 1, "one line, not \(lines.count): \(result.err)", sourceLocation: sourceLocation)
        for text in naming { #expect(result.err.contains(text), "names \(text): \(result.err)", sourceLocation: sourceLocation) }
        for raw in ["NSCocoaErrorDomain", "Error Domain=", "DecodingError", "CodingKeys", "%3|", "%4|", "%7|", "rd_kafka", "\"msg\":\"started\""] {
            #expect(!result.err.contains(raw), "raw text '\(raw)' on stderr: \(result.err)", sourceLocation: sourceLocation)
        }
        #expect(took < seconds, "refused after \(took) s", sourceLocation: sourceLocation)
        return result.err
    }

    func write(_ text: String, _ name: String) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// A copy of adapters/ whose catalogues can be broken one by one.
    func catalogues() throws -> URL {
        let dir = scratch.appendingPathComponent("adapters")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.copyItem(at: repoRoot.appendingPathComponent("adapters"), to: dir)
        return dir
    }

    @Test("a department whose --state directory does not exist refuses before it starts")
    func departmentStateDirectory() throws {
        let state = scratch.appendingPathComponent("no-such-dir/tax.json").path
        try refuses(["department", "run", "--agency", "tax", "--state", state],
                    naming: ["--state", state, "does not exist"])
        // A state path that is a directory, likewise.
        try refuses(["department", "run", "--agency", "tax", "--state", scratch.path], naming: ["--state", "is a directory"])
    }

    @Test("a catalogue missing a key: one line with file and JSON path, for bundles commands and services alike")
    func catalogueMissingKey() throws {
        let dir = try catalogues()
        let file = dir.appendingPathComponent("tax/catalogue.json")
        let text = try String(contentsOf: file, encoding: .utf8)
        // Drop the second action's title.
        var json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        var actions = json["actions"] as! [[String: Any]]
        actions[1].removeValue(forKey: "title")
        json["actions"] = actions
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        for command in [["bundles", "list"], ["bundles", "validate"], ["orchestrator", "run"]] {
            try refuses(command + ["--catalogues", dir.path], naming: [file.path, "$.actions[1]", "missing key \"title\""])
        }
        try refuses(["bundles", "list", "--catalogues", scratch.appendingPathComponent("nowhere").path],
                    naming: ["--catalogues", "no such directory"])
    }

    @Test("JSON syntax errors say line and column: catalogue, calendar, applications, trailing commas too")
    func syntaxErrors() throws {
        let dir = try catalogues()
        let catalogue = dir.appendingPathComponent("bank/catalogue.json")
        try "{\n  \"agency\": \"bank\",\n  \"title\": \"x\",\n  \"errors\": [],\n  \"actions\": [],\n}\n".write(to: catalogue, atomically: true, encoding: .utf8)
        try refuses(["bundles", "list", "--catalogues", dir.path], naming: [catalogue.path, "line 6, column 1", "trailing commas"])

        let calendars = scratch.appendingPathComponent("calendars")
        try FileManager.default.createDirectory(at: calendars, withIntermediateDirectories: true)
        let calendar = try write("{\n  \"name\": \"cn-mainland\"\n  \"workingHours\": []\n}\n", "calendars/cn-mainland.json")
        try refuses(["bundles", "list", "--calendars", calendars.path], naming: [calendar.path, "line 3, column 3", "expected ',' or '}'"])

        let forms = try write("{\"applicationId\": \"APP-1\"}\n{\"applicationId\": \"APP-2\" \"x\": 1}\n", "apps.jsonl")
        try refuses(["frontdesk", "run", "--clock-start", "2026-03-02T09:00:00+08:00", "--applications", forms.path],
                    naming: [forms.path, "--applications", "line 2, column 27"])
    }

    @Test("missing files and directories named with their setting: --schemas, --reference, --repository, --manifest, --clock-working-hours, --html")
    func missingPaths() throws {
        let gone = scratch.appendingPathComponent("gone").path
        try refuses(["orchestrator", "run", "--schemas", gone], naming: [gone, "--schemas", "no such directory"])
        try refuses(["department", "run", "--agency", "bank", "--reference", gone], naming: ["--reference", gone])
        try refuses(["adapter", "run", "--agency", "bank", "--repository", gone], naming: ["--repository", gone])
        try refuses(["frontdesk", "run", "--clock-start", "2026-03-02T09:00:00+08:00", "--manifest", gone + ".json"],
                    naming: ["--manifest", gone + ".json", "no such file"])
        try refuses(["orchestrator", "run", "--clock-start", "2026-03-02T09:00:00+08:00", "--clock-working-hours", "mars"],
                    naming: ["--clock-working-hours mars", "mars.json", "no such file"])
        let file = try write("x", "plain-file")
        try refuses(["report", "sla", "--from", "2026-03-02", "--to", "2026-03-03", "--html", file.path + "/report.html"],
                    naming: ["--html", file.path])
    }

    @Test("usage errors point at the subcommand's help, in one line")
    func usageErrorsNameTheSubcommand() throws {
        try refuses(["sagas", "list", "--bogus"], naming: ["--bogus", "yishi sagas list --help"])
        try refuses(["department", "run", "--agency", "tax", "--profile", "wild"], naming: ["--profile", "yishi department run --help"])
        try refuses(["sagas", "nonsense"], naming: ["yishi sagas --help"])
        // A setting from the environment is named as such.
        var env = yishi.environment
        env["YISHI_SESSION_TIMEOUT_MS"] = "10s"
        let bad = try YishiCommand(repoRoot: repoRoot, environment: env).run(["adapter", "run", "--agency", "tax"])
        #expect(bad.status == 2 && bad.err.contains("YISHI_SESSION_TIMEOUT_MS") && bad.err.contains("'10s'"), "\(bad)")
    }

    @Test("an unreachable broker: the CLI's own line only (no librdkafka log lines), exit 3, within --timeout")
    func unreachableBroker() throws {
        for command in [["sagas", "show", "APP-X"], ["cases"]] {
            try refuses(command + ["--timeout", "1"], status: 3, naming: ["127.0.0.1:9"], within: 2.5)
        }
    }
}
