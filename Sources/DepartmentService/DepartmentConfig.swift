import Departments
import Foundation
import Messaging
import SagaEngine

/// `adapters/<agency>/department.json`: a department simulator described by a file, for an
/// agency without a Swift model (docs/departments.md, "The configurable simulator";
/// docs/adding-an-agency.md). It says the department's envelope and reply field names, its
/// result codes, its failure profile, and per native action: the latency (working minutes),
/// the request checks (the native JSON Schema in `native/<ACTION>.request.schema.json`, then
/// simple rules), a uniqueness key, the reply template and the effect it records.
///
/// Loading checks everything and reports every problem as `file: $.path: message`
/// (`DepartmentConfig.check`); `load` throws `DepartmentConfigError` with all of them.
public struct DepartmentConfig: Sendable {
    /// The department's names for request id, action, saga reference and step reference.
    public struct Envelope: Sendable, Equatable {
        public var requestId: String, action: String, sagaRef: String, stepRef: String
    }
    /// The reply's result code, message and field-at-fault names.
    public struct ReplyFields: Sendable, Equatable {
        public var code: String, message: String, field: String
    }
    /// Result codes: success, message format error (schema or type), unknown action, request
    /// id reused with another payload (also: a forward request after its step was withdrawn),
    /// manual review, and the retryable fault codes the profile injects.
    public struct Codes: Sendable, Equatable {
        public var success: String, format: String, unknownAction: String, conflict: String, manualReview: String
        public var transient: [String]
    }

    /// A condition of a rule on the request (paths below the request object, `a.b[0].c`).
    public indirect enum Condition: Sendable {
        /// `{"field": F, "op": OP, "value": V}` or `{"field": F, "op": OP, "otherField": G}`.
        /// OP: `==`, `!=`, `<`, `<=`, `>`, `>=` (numbers compare as numbers, else as text),
        /// `in` (V an array), `present`, `absent`, `matches` (V an ECMA-style regex, whole value),
        /// `valid-uscc` (GB 32100 layout, as issued), `valid-id` (GB 11643 resident ID, birth
        /// date not after the day of the request), `valid-mobile`.
        case compare(field: [JSONValue.PathComponent], fieldText: String, op: String, value: JSONValue?, other: [JSONValue.PathComponent]?)
        case all([Condition])
        case any([Condition])
        case not(Condition)
    }

    /// A business rule: when `when` holds (always, if absent), `require` must hold, else the
    /// request is rejected with `code`, `message` and the field at fault `field`.
    public struct Rule: Sendable {
        public var when: Condition?
        public var require: Condition
        public var code: String, message: String, field: String?
    }

    /// At most one active (not undone) success per value of the request field `key`
    /// (an employer registers once): a second is rejected with `code`.
    public struct Unique: Sendable {
        public var key: [JSONValue.PathComponent], keyText: String
        public var code: String, message: String, field: String?
    }

    /// The effect a success records on the ledger: `kind`, its business key (a reply template
    /// path such as `$.reply.dwzh`) and data fields (templates).
    public struct Effect: Sendable {
        public var kind: String
        public var key: String
        public var data: [String: String]
    }

    /// A compensation: the request field naming the key to undo (filled from the ledger when the
    /// hub never learned it) and the forward effect kind it undoes.
    public struct Undo: Sendable {
        public var field: String
        public var effect: String
    }

    public struct Action: Sendable {
        public var latency: LatencyDistribution
        public var requestSchema: JSONSchema?
        public var rules: [Rule]
        public var unique: Unique?
        /// The reply body (besides the envelope): a template, see docs/departments.md.
        public var reply: JSONValue
        public var effect: Effect?
        public var undo: Undo?
    }

    public var agency: String
    public var title: String
    public var envelope: Envelope
    public var reply: ReplyFields
    public var codes: Codes
    /// The `default` profile's rates (probabilities 0…1); `no-faults` zeroes them, `flaky` uses the built-in flaky rates.
    public var faults: (transient: Double, lost: Double, manual: Double)
    public var actions: [String: Action]
    public var file: String

    /// Reads and checks `<directory>/department.json` (directory: `adapters/<agency>`), compiling
    /// `native/<ACTION>.request.schema.json` for every action that has one.
    /// Throws `DepartmentConfigError` listing every problem.
    public static func load(directory: URL) throws(DepartmentConfigError) -> DepartmentConfig {
        let (config, problems) = check(directory: directory)
        guard let config, problems.isEmpty else { throw DepartmentConfigError(problems: problems) }
        return config
    }

    /// Every problem of `<directory>/department.json` as `file: $.path: message`, and the
    /// config when it loaded (problems may still be present).
    public static func check(directory: URL) -> (DepartmentConfig?, [String]) {
        let url = directory.appendingPathComponent("department.json")
        let file = url.path
        var problems: [String] = []
        func add(_ path: String, _ message: String) { problems.append("\(file): \(path): \(message)") }
        let json: JSONValue
        do { json = try JSONValue.parse(Data(contentsOf: url)) } catch {
            return (nil, ["\(file): $: not readable JSON: \(error)"])
        }
        guard json.objectValue != nil else { return (nil, ["\(file): $: expected an object"]) }
        func string(_ v: JSONValue?, _ path: String) -> String {
            guard let s = v?.stringValue, !s.isEmpty else { add(path, "expected a non-empty string"); return "" }
            return s
        }
        let agency = string(json["agency"], "$.agency")
        if !agency.isEmpty, agency != directory.lastPathComponent {
            add("$.agency", "'\(agency)' does not match its directory '\(directory.lastPathComponent)'")
        }
        let e = json["envelope"], r = json["reply"], c = json["codes"]
        let envelope = Envelope(requestId: string(e?["requestId"], "$.envelope.requestId"), action: string(e?["action"], "$.envelope.action"),
                                sagaRef: string(e?["sagaRef"], "$.envelope.sagaRef"), stepRef: string(e?["stepRef"], "$.envelope.stepRef"))
        let reply = ReplyFields(code: string(r?["code"], "$.reply.code"), message: string(r?["message"], "$.reply.message"),
                                field: string(r?["field"], "$.reply.field"))
        var transient = c?["transient"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if transient.isEmpty { add("$.codes.transient", "expected a non-empty list of retryable fault codes"); transient = ["?"] }
        let codes = Codes(success: string(c?["success"], "$.codes.success"), format: string(c?["format"], "$.codes.format"),
                          unknownAction: string(c?["unknownAction"], "$.codes.unknownAction"), conflict: string(c?["conflict"], "$.codes.conflict"),
                          manualReview: string(c?["manualReview"], "$.codes.manualReview"), transient: transient)
        func rate(_ key: String) -> Double {
            guard let v = json["faults"]?[key] else { return 0 }
            guard let d = v.doubleValue, d >= 0, d <= 1 else { add("$.faults.\(key)", "expected a probability between 0 and 1"); return 0 }
            return d
        }
        let faults = (rate("transientFaultRate"), rate("lostReplyRate"), rate("manualRejectionRate"))

        func path(_ v: JSONValue?, _ at: String) -> ([JSONValue.PathComponent], String)? {
            guard let s = v?.stringValue, let p = JSONValue.parsePath(s[...]) else {
                add(at, "expected a request field path such as 'dwxx.tyshxydm' or 'items[0].code'"); return nil
            }
            return (p, s)
        }
        let ops: Set<String> = ["==", "!=", "<", "<=", ">", ">=", "in", "present", "absent", "matches", "valid-uscc", "valid-id", "valid-mobile"]
        func condition(_ v: JSONValue?, _ at: String) -> Condition? {
            guard let o = v?.objectValue else { add(at, "expected a condition object"); return nil }
            if let list = o["all"] ?? o["any"] {
                guard let items = list.arrayValue, !items.isEmpty else { add(at, "expected a non-empty list of conditions"); return nil }
                let key = o["all"] != nil ? "all" : "any"
                let cs = items.enumerated().compactMap { condition($1, "\(at).\(key)[\($0)]") }
                guard cs.count == items.count else { return nil }
                return key == "all" ? .all(cs) : .any(cs)
            }
            if let inner = o["not"] { return condition(inner, at + ".not").map(Condition.not) }
            guard let (field, text) = path(o["field"], at + ".field") else { return nil }
            guard let op = o["op"]?.stringValue, ops.contains(op) else {
                add(at + ".op", "expected one of \(ops.sorted().joined(separator: ", "))"); return nil
            }
            var other: [JSONValue.PathComponent]?
            if o["otherField"] != nil { other = path(o["otherField"], at + ".otherField")?.0 }
            let needsValue = ["==", "!=", "<", "<=", ">", ">=", "in", "matches"].contains(op)
            if needsValue && o["value"] == nil && other == nil { add(at, "op '\(op)' needs \"value\" or \"otherField\""); return nil }
            if op == "in" && o["value"]?.arrayValue == nil { add(at + ".value", "op 'in' needs an array"); return nil }
            if op == "matches" {
                guard let pattern = o["value"]?.stringValue, (try? NSRegularExpression(pattern: pattern)) != nil else {
                    add(at + ".value", "op 'matches' needs a valid regular expression"); return nil
                }
            }
            return .compare(field: field, fieldText: text, op: op, value: o["value"], other: other)
        }

        var actions: [String: Action] = [:]
        let native = directory.appendingPathComponent("native")
        for (id, a) in (json["actions"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            let at = "$.actions.\(id)"
            var latency = LatencyDistribution(min: 5, mode: 15, max: 60)
            if let l = a["latency"] {
                if let lo = l["min"]?.doubleValue, let mode = l["mode"]?.doubleValue, let hi = l["max"]?.doubleValue, lo >= 0, lo <= mode, mode <= hi {
                    latency = LatencyDistribution(min: lo, mode: mode, max: hi)
                } else {
                    add(at + ".latency", "expected {\"min\", \"mode\", \"max\"} working minutes with 0 <= min <= mode <= max")
                }
            }
            var schema: JSONSchema?
            let schemaFile = native.appendingPathComponent("\(id).request.schema.json")
            if FileManager.default.fileExists(atPath: schemaFile.path) {
                do { schema = try JSONSchema(contentsOf: schemaFile) } catch { problems.append(error.description) }
            } else {
                add(at, "no native request schema \(schemaFile.path): every action's requests are checked against one")
            }
            var rules: [Rule] = []
            for (i, rv) in (a["rules"]?.arrayValue ?? []).enumerated() {
                let rp = "\(at).rules[\(i)]"
                let when = rv["when"].map { condition($0, rp + ".when") } ?? nil
                if rv["when"] != nil && when == nil { continue }
                guard let require = condition(rv["require"], rp + ".require") else { continue }
                rules.append(Rule(when: when, require: require, code: string(rv["code"], rp + ".code"),
                                  message: string(rv["message"], rp + ".message"), field: rv["field"]?.stringValue))
            }
            var unique: Unique?
            if let u = a["unique"], let (key, text) = path(u["key"], at + ".unique.key") {
                unique = Unique(key: key, keyText: text, code: string(u["code"], at + ".unique.code"),
                                message: string(u["message"], at + ".unique.message"), field: u["field"]?.stringValue ?? text)
            }
            let replyTemplate = a["reply"] ?? .object([:])
            checkTemplate(replyTemplate, at + ".reply", undo: a["undo"] != nil, add: add)
            var effect: Effect?
            if let ef = a["effect"] {
                let data = (ef["data"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
                effect = Effect(kind: string(ef["kind"], at + ".effect.kind"), key: string(ef["key"], at + ".effect.key"), data: data)
                for (k, v) in [("key", effect!.key)] + data.map({ ("data.\($0.key)", $0.value) }) where !v.hasPrefix("$.request.") && !v.hasPrefix("$.reply.") {
                    add("\(at).effect.\(k)", "expected a path under $.request. or $.reply.")
                }
            }
            var undo: Undo?
            if let u = a["undo"] {
                undo = Undo(field: string(u["field"], at + ".undo.field"), effect: string(u["effect"], at + ".undo.effect"))
            }
            actions[id] = Action(latency: latency, requestSchema: schema, rules: rules, unique: unique, reply: replyTemplate, effect: effect, undo: undo)
        }
        if actions.isEmpty { add("$.actions", "expected at least one native action") }
        for (id, a) in actions {
            if let u = a.undo, !actions.values.contains(where: { $0.effect?.kind == u.effect }) {
                add("$.actions.\(id).undo.effect", "no action records an effect of kind '\(u.effect)'")
            }
        }
        let config = DepartmentConfig(agency: agency, title: json["title"]?.stringValue ?? agency, envelope: envelope, reply: reply,
                                      codes: codes, faults: faults, actions: actions, file: file)
        return (config, problems)
    }

    /// Template checks: `$id` generators, `$date`, `$counter`, and paths under `$.request.`
    /// (and `$.record.` in a compensation's reply).
    static func checkTemplate(_ t: JSONValue, _ at: String, undo: Bool, add: (String, String) -> Void) {
        switch t {
        case .string(let s) where s.hasPrefix("$"):
            let ok = (s.hasPrefix("$.request.") && JSONValue.parsePath(s.dropFirst(10)) != nil)
                || (undo && s.hasPrefix("$.record.") && JSONValue.parsePath(s.dropFirst(9)) != nil)
            if !ok { add(at, "'\(s)' is not a path under $.request.\(undo ? " or $.record." : "")") }
        case .object(let o):
            if let id = o["$id"] {
                guard let counter = id["counter"]?.stringValue, !counter.isEmpty else { add(at + ".$id.counter", "expected a counter name"); return }
                if let d = id["digits"], !(d.intValue.map { $0 >= 1 && $0 <= 18 } ?? false) { add(at + ".$id.digits", "expected 1 to 18") }
                if let c = id["check"]?.stringValue, !CheckDigit.algorithms.contains(c) {
                    add(at + ".$id.check", "unknown check digit algorithm '\(c)' (known: \(CheckDigit.algorithms.sorted().joined(separator: ", ")))")
                }
                if let p = id["prefix"] { checkTemplate(p, at + ".$id.prefix", undo: undo, add: add) }
            } else if let d = o["$date"] {
                if !["yyyyMMdd", "yyyy-MM-dd"].contains(d.stringValue ?? "") { add(at + ".$date", "expected \"yyyyMMdd\" or \"yyyy-MM-dd\"") }
            } else if let c = o["$counter"] {
                if c.stringValue?.isEmpty ?? true { add(at + ".$counter", "expected a counter name") }
            } else {
                for (k, v) in o { checkTemplate(v, at + ".\(k)", undo: undo, add: add) }
            }
        case .array(let a):
            for (i, v) in a.enumerated() { checkTemplate(v, at + "[\(i)]", undo: undo, add: add) }
        default: break
        }
    }
}

/// Every problem of a `department.json`, each `file: $.path: message`.
public struct DepartmentConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

/// Check characters for generated ids (`$id.check` in a reply template).
public enum CheckDigit {
    public static let algorithms: Set<String> = ["iso7064-mod11-2", "luhn"]

    /// The check character of the digit string `body`: ISO 7064 MOD 11-2 (the GB 11643 ID
    /// number's: `0`–`9` or `X`) or Luhn (ISO/IEC 7812). Nil for an unknown algorithm or a non-digit.
    public static func character(_ algorithm: String, for body: String) -> Character? {
        let digits = body.compactMap(\.wholeNumberValue)
        guard digits.count == body.count else { return nil }
        switch algorithm {
        case "iso7064-mod11-2":
            var sum = 0
            for (i, d) in digits.enumerated() { sum += d * (1 << (digits.count - i)) % 11 }
            let check = (12 - sum % 11) % 11
            return check == 10 ? "X" : Character(String(check))
        case "luhn":
            var sum = 0
            for (i, d) in digits.reversed().enumerated() {
                if i % 2 == 0 { let x = d * 2; sum += x > 9 ? x - 9 : x } else { sum += d }
            }
            return Character(String((10 - sum % 10) % 10))
        default: return nil
        }
    }

    /// True when `code`'s last character is the check character of the rest.
    public static func isValid(_ algorithm: String, _ code: String) -> Bool {
        guard let last = code.last else { return false }
        return character(algorithm, for: String(code.dropLast())) == last
    }
}
