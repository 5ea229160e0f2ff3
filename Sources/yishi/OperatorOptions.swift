import Foundation
import Messaging
import Operations
import Orchestrator
import SagaEngine

/// Options every operator command (sagas, cases, dlq, lag) shares.
struct OperatorOptions {
    var hub: Hub
    var json: Bool
    var revealPII: Bool
    var style: Style
    var source: SagaSource.Mode
    var clock: HubClock
    /// The command line, for access records.
    var commandLine: [String]

    static let help = """
        Connection and output (every sagas/cases/dlq/lag command):
          --bootstrap HOST:PORT  Kafka bootstrap servers (env YISHI_BOOTSTRAP; required)
          --prefix P             topic prefix (env YISHI_PREFIX or YISHI_TOPIC_PREFIX, default yishi.)
          --as NAME              operator identity for the audit trail (env YISHI_OPERATOR, default the user name)
          --timeout SECONDS      the whole command waits at most this long for the broker and the orchestrator
                                 (env YISHI_TIMEOUT, default 10)
          --source MODE          auto (orchestrator, else the changelog), live, or changelog (default auto; queries only)
          --orchestrator-group G the orchestrator's consumer group (env YISHI_ORCHESTRATOR_GROUP, default <prefix>orchestrator)
          --json                 JSON for scripts instead of tables
          --reveal-pii           show ID numbers, phones and names unmasked; recorded on <prefix>ops-audit first
          --no-color             no colour even on a terminal (colour is only ever used on a terminal; NO_COLOR too)
        \(SecurityOptions.help)
        \(ClockOptions.help)

        Exit codes: 0 ok; 1 not found, refused by the orchestrator, or problems found; 2 usage, or
        security settings the broker refused (wrong password, unknown user, untrusted certificate);
        3 broker or orchestrator unreachable, or no answer within --timeout.
        """

    static func read(_ args: inout Arguments) throws -> OperatorOptions {
        let env = ProcessInfo.processInfo.environment
        let commandLine = ["yishi"] + args.tokens
        guard let bootstrap = try args.option("--bootstrap") ?? env["YISHI_BOOTSTRAP"] else {
            throw UsageError("--bootstrap (or YISHI_BOOTSTRAP) is required")
        }
        let prefix = try args.option("--prefix") ?? env["YISHI_PREFIX"] ?? env["YISHI_TOPIC_PREFIX"] ?? "yishi."
        let operatorName = try args.option("--as") ?? env["YISHI_OPERATOR"] ?? env["USER"] ?? env["LOGNAME"] ?? NSUserName()
        guard !operatorName.isEmpty else { throw UsageError("no operator identity: pass --as NAME or set YISHI_OPERATOR") }
        let timeoutText = try args.option("--timeout") ?? env["YISHI_TIMEOUT"] ?? "10"
        guard let seconds = Double(timeoutText), seconds > 0 else { throw UsageError("--timeout must be a positive number of seconds, not '\(timeoutText)'") }
        let sourceText = try args.option("--source") ?? "auto"
        guard let source = SagaSource.Mode(rawValue: sourceText) else { throw UsageError("--source must be auto, live or changelog, not '\(sourceText)'") }
        let group = try args.option("--orchestrator-group") ?? env["YISHI_ORCHESTRATOR_GROUP"]
        let json = args.flag("--json")
        let reveal = args.flag("--reveal-pii")
        let noColour = args.flag("--no-color", "--no-colour")
        let clockGiven = args.tokens.contains { $0.hasPrefix("--clock-start") } || env["YISHI_CLOCK_START"] != nil
        let clock = try ClockOptions.read(&args)
        let security = try SecurityOptions.read(&args)
        var options = OperatorOptions(
            hub: Hub(bootstrap: bootstrap, prefix: prefix, operatorName: operatorName, timeout: .milliseconds(Int(seconds * 1000)),
                     orchestratorGroup: group, security: security, wholeCommandBudget: true),
            json: json, revealPII: reveal, style: noColour ? .plain : .forStandardOutput, source: source, clock: clock,
            commandLine: commandLine)
        options.clockGiven = clockGiven
        return options
    }

    /// Whether the hub clock was given (flags or YISHI_CLOCK_* variables): it overrides the
    /// clock the orchestrator reports.
    var clockGiven = false

    /// The hub's now: the clock given, else the answering orchestrator's (`OpsReply.now`, learned
    /// from the command's live query), else real time.
    var now: Instant {
        if !clockGiven, let ms = hub.hubNow { return Instant(ms: ms) }
        return clock.now()
    }

    /// Records the access before personal data is shown; nothing is shown if it cannot be recorded.
    func recordReveal(sagaIds: [String]) throws {
        guard revealPII else { return }
        try AccessLog(hub: hub).record(.revealPII, command: commandLine, sagaIds: sagaIds)
    }

    /// `value` as JSON with --json, else the table `text` renders.
    func emit<T: Encodable>(_ value: T, text: () -> String) throws {
        if json { try printJSONValue(value, revealPII: revealPII) } else { print(text()) }
    }

    func notes(_ source: SagaSource) {
        for note in source.notes { printError("note: \(note)") }
    }
}

/// `--filter 'status=manual,step=tax-registration'` and the same criteria as separate options.
enum FilterOptions {
    static let help = """
        Filter (as options, or all in one --filter 'key=value,key=value' with the same keys):
          --bundle ID            bundle id
          --status S[,S]         new, running, manual, compensating, completed, failed, compensated, cancelled
          --agency A             a step of this agency holds the saga up (out, backing off, failed, waiting)
          --step S               this step holds the saga up
          --overdue / --at-risk  SLA breached / at risk
          --paused               paused sagas and sagas with a held step (waiting for an operator)
          --from T / --to T      submitted at or after / before (RFC 3339, or YYYY-MM-DD in UTC+8)
          --region CODE          application region code starts with CODE (e.g. 3301)
          --limit N              at most N sagas (default 1000 per partition; list pages: 50)
          --after CURSOR         the next page, as printed after a list
        """

    static let keys: Set<String> = ["bundle", "status", "agency", "step", "overdue", "at-risk", "paused", "from", "to", "region", "limit", "after"]

    /// Reads the filter; `defaultLimit` when none is given. `any` tells whether any criterion was set.
    static func read(_ args: inout Arguments, defaultLimit: Int? = nil) throws -> (filter: SagaFilter, any: Bool) {
        var values: [String: String] = [:]
        if let expression = try args.option("--filter") {
            for part in expression.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
                let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                guard keys.contains(kv[0]) else { throw UsageError("--filter: unknown key '\(kv[0])' (keys: \(keys.sorted().joined(separator: ", ")))") }
                if kv[0] == "status", let existing = values["status"] { values["status"] = existing + "|" + (kv.count > 1 ? kv[1] : "") }
                else { values[kv[0]] = kv.count > 1 ? kv[1] : "true" }
            }
        }
        for key in ["bundle", "status", "agency", "step", "from", "to", "region", "limit", "after"] {
            if let v = try args.option("--" + key) { values[key] = v }
        }
        for key in ["overdue", "at-risk", "paused"] where args.flag("--" + key) { values[key] = "true" }
        var f = SagaFilter()
        f.bundle = values["bundle"]
        if let s = values["status"] {
            f.status = try s.split(whereSeparator: { $0 == "," || $0 == "|" }).map { name in
                guard let status = SagaStatus(rawValue: String(name)) else { throw UsageError("unknown status '\(name)'") }
                return status
            }
        }
        f.agency = values["agency"]
        f.step = values["step"]
        func bool(_ key: String) throws -> Bool? {
            guard let v = values[key] else { return nil }
            guard let b = Bool(v) else { throw UsageError("\(key) must be true or false, not '\(v)'") }
            return b
        }
        f.overdue = try bool("overdue")
        f.atRisk = try bool("at-risk")
        f.paused = try bool("paused")
        f.submittedFrom = try values["from"].map { try instant($0, "from") }
        f.submittedTo = try values["to"].map { try instant($0, "to") }
        if let r = values["region"] {
            guard !r.isEmpty, r.count <= 6, r.allSatisfy(\.isNumber) else { throw UsageError("--region must be 1 to 6 digits, not '\(r)'") }
            f.region = r
        }
        if let l = values["limit"] {
            guard let n = Int(l), (1...10_000).contains(n) else { throw UsageError("--limit must be 1 to 10000, not '\(l)'") }
            f.limit = n
        } else {
            f.limit = defaultLimit
        }
        if let a = values["after"] {
            guard let cursor = SagaCursor(token: a) else { throw UsageError("--after '\(a)' is not a cursor printed by a list") }
            f.after = cursor
        }
        return (f, !values.keys.filter { $0 != "limit" && $0 != "after" }.isEmpty)
    }

    static func instant(_ text: String, _ name: String) throws -> Instant {
        if let i = Instant(rfc3339: text) { return i }
        if text.count == 10, let i = Instant(rfc3339: text + "T00:00:00+08:00") { return i }
        throw UsageError("--\(name) '\(text)' is neither RFC 3339 nor YYYY-MM-DD")
    }
}

/// `--set k=v`, `--output k=v`, `--material k=v`: the value is JSON when it parses, else a string.
func keyValues(_ args: inout Arguments, _ name: String) throws -> [String: JSONValue]? {
    var out: [String: JSONValue] = [:]
    for pair in try args.options(name) {
        let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2, !kv[0].isEmpty else { throw UsageError("\(name) wants KEY=VALUE, not '\(pair)'") }
        out[kv[0]] = (try? JSONValue.parse(kv[1])) ?? .string(kv[1])
    }
    return out.isEmpty ? nil : out
}

func printJSONValue<T: Encodable>(_ value: T, revealPII: Bool) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try e.encode(value)
    // A last pass by value pattern: no full ID or mobile number leaves in JSON unless revealed.
    let text = String(decoding: data, as: UTF8.self)
    print(revealPII ? text : PersonalData.maskText(text))
}
