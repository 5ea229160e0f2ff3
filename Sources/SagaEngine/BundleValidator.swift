import Foundation

/// One thing wrong with a bundle file, located by JSON path.
public struct BundleProblem: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        case syntax, missingField, wrongType, unknownKey, badValue, badDuration
        case duplicateStepId, unknownPredecessor, cycle
        case unknownAgency, unknownAction,
        /// An agency with a catalogue that the hub cannot serve (no mapping, or not served here).
        unservableAgency, unknownErrorCode, unknownCalendar
        case badReference, unknownFormField, unknownStep, notAPredecessor, unknownOutput, unknownLicence
        case missingInput, unknownInput, compensation
        /// A saga submitted at the checked instant gets a deadline in a year its calendar does not cover.
        case calendarNotCovered
        /// A deferrable (容缺) material the step's action never asks for.
        case deferrableMaterial
        /// A trigger names an event type without a schema, or a field its event type's schema lacks.
        case unknownEventField
    }
    public var file: String
    public var path: String
    public var kind: Kind
    public var message: String

    /// `file: $.json.path: message`, the format `yishi bundles validate` prints.
    public var description: String { "\(file): \(path): \(message)" }
}

/// Checks a bundle file completely and reports every problem, not just the first: structure and
/// types, durations, the DAG (duplicates, unknown predecessors, every cycle), agencies, actions and
/// error codes against the catalogues, and every input mapping reference.
public struct BundleValidator: Sendable {
    public let catalogues: CatalogueSet
    /// Known calendars by name; the SLA must name one.
    public let calendars: [String: BusinessCalendar]

    /// The application forms' schema (from `eventSchemas`): `$.form.…` references are checked
    /// along their whole path (`FormSchema`); a triggered bundle's against its `trigger.form`.
    /// Without it only the first key is checked, against `formFields`.
    public private(set) var formSchema: FormSchema?

    /// Top-level fields of the application form (docs/application-form.md).
    public static let formFields: Set<String> = [
        "applicationId", "bundle", "submittedAt", "region", "company", "legalRepresentative", "shareholders",
        "employees", "seals", "tax", "bank", "permits", "materials", "contact", "deregistration", "trigger",
    ]

    /// JSON Schemas of the hub's event types (CloudEvents type → schema), for `trigger` checks
    /// and (the application forms' among them) whole-path `$.form.…` checks.
    public var eventSchemas: [String: JSONValue] {
        didSet { formSchema = FormSchema.applicationForms(eventSchemas) }
    }

    public init(catalogues: CatalogueSet, calendars: [String: BusinessCalendar], eventSchemas: [String: JSONValue] = [:]) {
        self.catalogues = catalogues
        self.calendars = calendars
        self.eventSchemas = eventSchemas
        formSchema = FormSchema.applicationForms(eventSchemas)
    }

    /// Validates raw file bytes; the definition is nil whenever there is any problem.
    public func validate(data: Data, file: String) -> (BundleDefinition?, [BundleProblem]) {
        let json: JSONValue
        do { json = try JSONValue.parse(data) } catch {
            return (nil, [BundleProblem(file: file, path: "$", kind: .syntax, message: "not valid JSON: \(ConfigFile.describe(error, data: data))")])
        }
        return validate(json: json, file: file)
    }

    public func validate(json: JSONValue, file: String) -> (BundleDefinition?, [BundleProblem]) {
        var w = Walker(file: file)
        let def = check(json, &w)
        return (w.problems.isEmpty ? def : nil, w.problems)
    }

    // MARK: - structure

    private static let topKeys: Set<String> = ["id", "version", "title", "description", "sla", "defaults", "steps", "trigger"]
    private static let slaKeys: Set<String> = ["workingDays", "calendar", "atRiskRemaining"]
    private static let defaultKeys: Set<String> = ["timeout", "retry", "onFailure"]
    private static let stepKeys: Set<String> = [
        "id", "title", "agency", "action", "after", "input", "timeout", "retry", "onFailure", "compensation", "deferrableMaterials", "wait",
    ]
    private static let retryKeys: Set<String> = ["attempts", "backoffBase", "backoffCap", "jitter", "retryableCodes"]

    private func check(_ json: JSONValue, _ w: inout Walker) -> BundleDefinition? {
        let root = JSONPath.root
        guard let top = w.object(json, root) else { return nil }
        w.keys(top, Self.topKeys, root)
        let id = w.slug(top["id"], root.key("id"))
        let version = w.int(top["version"], root.key("version"), min: 1)
        let title = w.string(top["title"], root.key("title"))
        let description = w.string(top["description"], root.key("description"), required: false)
        let sla = checkSLA(top["sla"], root.key("sla"), &w)
        var trigger: BundleDefinition.Trigger?
        if let t = top["trigger"] {
            let (checked, found) = BundleExtensionCheck.trigger(t, root.key("trigger"), schemas: eventSchemas)
            for f in found { w.add(f.1, f.0, f.2) }
            trigger = checked
        }

        // Bundle-level defaults are checked where they are written, then folded into steps.
        var defTimeout: String?, defRetry: BundleDefinition.Retry?, defPolicy: BundleDefinition.FailurePolicy?
        if let d = top["defaults"], let dobj = w.object(d, root.key("defaults")) {
            let p = root.key("defaults")
            w.keys(dobj, Self.defaultKeys, p)
            if dobj["timeout"] != nil { defTimeout = w.duration(dobj["timeout"], p.key("timeout")) }
            if let r = dobj["retry"] { defRetry = checkRetry(r, p.key("retry"), agency: nil, &w) }
            if dobj["onFailure"] != nil { defPolicy = w.policy(dobj["onFailure"], p.key("onFailure")) }
        }

        guard let stepsJSON = top["steps"] else { w.add(.missingField, root, "missing required field 'steps'"); return nil }
        guard case .array(let items) = stepsJSON, !items.isEmpty else {
            w.add(.wrongType, root.key("steps"), "'steps' must be a non-empty array"); return nil
        }

        // Pass 1: each step on its own. `nodes` keeps what the graph and mapping checks need even
        // when other fields of the step are broken, so one bad field does not hide a cycle.
        var steps: [BundleDefinition.Step?] = []
        var nodes: [Node] = []
        var firstIndex: [String: Int] = [:]
        for (i, item) in items.enumerated() {
            let p = root.key("steps").index(i)
            guard let o = w.object(item, p) else { steps.append(nil); nodes.append(Node()); continue }
            w.keys(o, Self.stepKeys, p)
            let sid = w.slug(o["id"], p.key("id"))
            if let sid {
                if let j = firstIndex[sid] {
                    w.add(.duplicateStepId, p.key("id"), "duplicate step id '\(sid)' (first defined at $.steps[\(j)])")
                } else { firstIndex[sid] = i }
            }
            if let waitJSON = o["wait"] {
                let (step, node) = checkWaitStep(o, waitJSON, p, sid: sid, &w)
                steps.append(step)
                nodes.append(node)
                continue
            }
            let agencyId = w.string(o["agency"], p.key("agency"))
            var catalogue: AgencyCatalogue?
            if let agencyId {
                catalogue = catalogues.agencies[agencyId]
                if catalogue == nil {
                    w.add(.unknownAgency, p.key("agency"), "unknown agency '\(agencyId)' (known: \(catalogues.agencies.keys.sorted().joined(separator: ", ")))")
                } else if let why = catalogues.unservable[agencyId] {
                    w.add(.unservableAgency, p.key("agency"), "agency '\(agencyId)' cannot be served: \(why)")
                }
            }
            let actionId = w.string(o["action"], p.key("action"))
            var action: AgencyCatalogue.Action?
            if let actionId, let catalogue {
                action = catalogue.action(actionId)
                if action == nil {
                    w.add(.unknownAction, p.key("action"), "agency '\(catalogue.agency)' has no action '\(actionId)' (known: \(catalogue.actions.map(\.id).joined(separator: ", ")))")
                }
            }
            var after: [String] = []
            if let a = o["after"] {
                if case .array(let preds) = a {
                    for (k, pred) in preds.enumerated() {
                        if let s = w.string(pred, p.key("after").index(k)) {
                            if after.contains(s) { w.add(.badValue, p.key("after").index(k), "'\(s)' listed twice") }
                            after.append(s)
                        }
                    }
                } else { w.add(.wrongType, p.key("after"), "'after' must be an array of step ids") }
            }
            var input: [String: JSONValue] = [:]
            if let m = o["input"] { input = w.object(m, p.key("input")) ?? [:] }

            let timeout: String? = o["timeout"] != nil ? w.duration(o["timeout"], p.key("timeout")) : defTimeout
            if o["timeout"] == nil, defTimeout == nil { w.add(.missingField, p, "missing required field 'timeout' (no default)") }
            let retry: BundleDefinition.Retry? = o["retry"].map { checkRetry($0, p.key("retry"), agency: catalogue, &w) }
                ?? defRetry.map { r in
                    // Defaults name codes too: each step's agency must know them.
                    for (k, code) in r.retryableCodes.enumerated() where catalogue != nil && !knows(catalogue!, code) {
                        w.add(.unknownErrorCode, root.key("defaults").key("retry").key("retryableCodes").index(k), "agency '\(catalogue!.agency)' (step \(sid ?? "?")) has no error code '\(code)'")
                    }
                    return r
                }
            let policy: BundleDefinition.FailurePolicy? = o["onFailure"] != nil ? w.policy(o["onFailure"], p.key("onFailure")) : defPolicy
            if o["onFailure"] == nil, defPolicy == nil { w.add(.missingField, p, "missing required field 'onFailure' (no default)") }

            var compensation: String?
            if o["compensation"] != nil, let c = w.string(o["compensation"], p.key("compensation")) {
                compensation = c
                if let catalogue, catalogue.action(c) == nil {
                    w.add(.compensation, p.key("compensation"), "agency '\(catalogue.agency)' has no action '\(c)'")
                }
                if let action, !action.compensable {
                    w.add(.compensation, p.key("compensation"), "action '\(action.id)' is not compensable")
                }
            } else if let action, let catalogue, action.compensable {
                if action.compensation.flatMap(catalogue.action) == nil {
                    w.add(.compensation, p.key("action"), "catalogue marks '\(action.id)' compensable but its compensation action '\(action.compensation ?? "")' does not exist")
                }
            }
            var deferrable: [String] = []
            if let d = o["deferrableMaterials"] {
                if case .array(let xs) = d {
                    deferrable = xs.enumerated().compactMap { w.string($0.element, p.key("deferrableMaterials").index($0.offset)) }
                } else { w.add(.wrongType, p.key("deferrableMaterials"), "'deferrableMaterials' must be an array of material types") }
                // A material the action never asks for can never be deferred: the author meant
                // another one, and the applicant would be asked for what the agency does not need.
                if let action, let catalogue {
                    let asks = action.supplementMaterials ?? []
                    for (k, m) in deferrable.enumerated() where !asks.contains(m) {
                        w.add(.deferrableMaterial, p.key("deferrableMaterials").index(k),
                              "action '\(action.id)' of agency '\(catalogue.agency)' never asks for '\(m)' as 容缺"
                              + (asks.isEmpty ? " (it asks for no supplement)" : " (it may ask for: \(asks.joined(separator: ", ")))"))
                    }
                }
            }
            nodes.append(Node(id: sid, agency: agencyId, action: actionId, after: after, input: input))
            if let sid, let agencyId, let actionId, let timeout, let policy {
                steps.append(BundleDefinition.Step(
                    id: sid, title: o["title"]?.stringValue, agency: agencyId, action: actionId, after: after, input: input,
                    timeout: timeout, retry: retry ?? .none, onFailure: policy, compensation: compensation, deferrableMaterials: deferrable))
            } else { steps.append(nil) }
        }

        // Pass 2: the graph and the mappings, which need every step.
        let known = Dictionary(nodes.enumerated().compactMap { i, n in n.id.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
        for (i, n) in nodes.enumerated() {
            for (k, pred) in n.after.enumerated() where known[pred] == nil {
                w.add(.unknownPredecessor, root.key("steps").index(i).key("after").index(k), "unknown predecessor '\(pred)'")
            }
        }
        checkCycles(nodes, known, &w)
        // A 免申即享 bundle's form is what its trigger builds, not an application.
        let form = trigger.map { FormSchema.template($0.form) } ?? formSchema
        for i in nodes.indices where nodes[i].id != nil { checkMappings(i, nodes, known, form: form, &w) }

        guard w.problems.isEmpty, let id, let version, let title, let sla else { return nil }
        return BundleDefinition(id: id, version: version, title: title, description: description, sla: sla, steps: steps.compactMap { $0 },
                                trigger: trigger)
    }

    private static let waitStepKeys: Set<String> = ["id", "title", "after", "wait", "onFailure"]

    /// A timed wait step (`wait`): only id, title, after, wait and onFailure, which must be
    /// `manual` (an objection opens a 办不成事 case; the default when absent).
    private func checkWaitStep(_ o: [String: JSONValue], _ waitJSON: JSONValue, _ p: JSONPath, sid: String?, _ w: inout Walker)
        -> (BundleDefinition.Step?, Node) {
        w.keys(o, Self.waitStepKeys, p)
        let (wait, found) = BundleExtensionCheck.wait(waitJSON, p.key("wait"))
        for f in found { w.add(f.1, f.0, f.2) }
        var after: [String] = []
        if let a = o["after"] {
            if case .array(let preds) = a {
                for (k, pred) in preds.enumerated() { if let s = w.string(pred, p.key("after").index(k)) { after.append(s) } }
            } else { w.add(.wrongType, p.key("after"), "'after' must be an array of step ids") }
        }
        if o["onFailure"] != nil, let policy = w.policy(o["onFailure"], p.key("onFailure")), policy != .manual {
            w.add(.badValue, p.key("onFailure"), "a wait step's onFailure must be 'manual' (an objection opens a 办不成事 case)")
        }
        let agency = BundleDefinition.Wait.agency, action = BundleDefinition.Wait.action
        let node = Node(id: sid, agency: agency, action: action, after: after, input: [:])
        guard let sid, let wait else { return (nil, node) }
        return (BundleDefinition.Step(id: sid, title: o["title"]?.stringValue, agency: agency, action: action, after: after, input: [:],
                                      timeout: "1d", retry: .none, onFailure: .manual, compensation: nil, deferrableMaterials: [], wait: wait), node)
    }

    private func knows(_ c: AgencyCatalogue, _ code: String) -> Bool { c.error(code) != nil || HubErrorCode.all.contains(code) }

    private func checkSLA(_ v: JSONValue?, _ p: JSONPath, _ w: inout Walker) -> BundleDefinition.SLA? {
        guard let v else { w.add(.missingField, p, "missing required field 'sla'"); return nil }
        guard let o = w.object(v, p) else { return nil }
        w.keys(o, Self.slaKeys, p)
        var days: Double?
        if let d = o["workingDays"] {
            if let n = d.doubleValue, n > 0, n <= 60 { days = n } else { w.add(.badValue, p.key("workingDays"), "'workingDays' must be a number in (0, 60]") }
        } else { w.add(.missingField, p, "missing required field 'workingDays'") }
        let calendarName = w.string(o["calendar"], p.key("calendar"))
        var calendar: BusinessCalendar?
        if let calendarName {
            calendar = calendars[calendarName]
            if calendar == nil { w.add(.unknownCalendar, p.key("calendar"), "unknown calendar '\(calendarName)' (known: \(calendars.keys.sorted().joined(separator: ", ")))") }
        }
        let atRisk = w.duration(o["atRiskRemaining"], p.key("atRiskRemaining"))
        if let days, let calendar, let atRisk, let ms = DurationText.parse(atRisk),
           ms >= Int64(days * Double(calendar.workingMsPerDay)) {
            w.add(.badValue, p.key("atRiskRemaining"), "'\(atRisk)' is not shorter than the SLA (\(days) working days of \(DurationText.format(calendar.workingMsPerDay)))")
        }
        guard let days, let calendarName, let atRisk else { return nil }
        return BundleDefinition.SLA(workingDays: days, calendar: calendarName, atRiskRemaining: atRisk)
    }

    private func checkRetry(_ v: JSONValue, _ p: JSONPath, agency: AgencyCatalogue?, _ w: inout Walker) -> BundleDefinition.Retry? {
        guard let o = w.object(v, p) else { return nil }
        w.keys(o, Self.retryKeys, p)
        let attempts = w.int(o["attempts"], p.key("attempts"), min: 1)
        let base = w.duration(o["backoffBase"], p.key("backoffBase"))
        let cap = w.duration(o["backoffCap"], p.key("backoffCap"))
        if let base, let cap, let b = DurationText.parse(base), let c = DurationText.parse(cap), b > c {
            w.add(.badDuration, p.key("backoffCap"), "backoffCap '\(cap)' is shorter than backoffBase '\(base)'")
        }
        var jitter: Double?
        if let j = o["jitter"] {
            if let n = j.doubleValue, n >= 0, n <= 1 { jitter = n } else { w.add(.badValue, p.key("jitter"), "'jitter' must be a number in [0, 1]") }
        } else { jitter = 0 }
        var codes: [String] = []
        if let cs = o["retryableCodes"] {
            if case .array(let xs) = cs {
                for (k, x) in xs.enumerated() {
                    guard let code = w.string(x, p.key("retryableCodes").index(k)) else { continue }
                    if let agency, !knows(agency, code) {
                        w.add(.unknownErrorCode, p.key("retryableCodes").index(k), "agency '\(agency.agency)' has no error code '\(code)'")
                    }
                    codes.append(code)
                }
            } else { w.add(.wrongType, p.key("retryableCodes"), "'retryableCodes' must be an array of error codes") }
        }
        guard let attempts, let base, let cap, let jitter else { return nil }
        return BundleDefinition.Retry(attempts: attempts, backoffBase: base, backoffCap: cap, jitter: jitter, retryableCodes: codes)
    }

    /// Reports each elementary cycle once, as `a → b → a`, at the `after` entry that closes it.
    /// The parts of a step the graph and mapping checks use.
    private struct Node {
        var id: String?
        var agency: String?
        var action: String?
        var after: [String] = []
        var input: [String: JSONValue] = [:]
    }

    private func checkCycles(_ steps: [Node], _ known: [String: Int], _ w: inout Walker) {
        var color = [UInt8](repeating: 0, count: steps.count)  // 0 new, 1 on stack, 2 done
        var stack: [Int] = []
        var reported = Set<[Int]>()
        func visit(_ i: Int) {
            color[i] = 1
            stack.append(i)
            for (k, pred) in steps[i].after.enumerated() {
                guard let j = known[pred] else { continue }
                if color[j] == 1 {
                    let cycle = Array(stack[stack.lastIndex(of: j)!...])
                    if reported.insert(cycle.sorted()).inserted {
                        // `after` points backwards in time, so print the cycle in dependency order.
                        let names = (cycle + [j]).reversed().map { steps[$0].id ?? "?" }
                        w.add(.cycle, JSONPath.root.key("steps").index(i).key("after").index(k), "cycle: \(names.joined(separator: " → "))")
                    }
                } else if color[j] == 0 { visit(j) }
            }
            stack.removeLast()
            color[i] = 2
        }
        for i in steps.indices where color[i] == 0 && steps[i].id != nil { visit(i) }
    }

    private func ancestors(_ i: Int, _ steps: [Node], _ known: [String: Int]) -> Set<Int> {
        var seen = Set<Int>(), todo = [i]
        while let n = todo.popLast() {
            for pred in steps[n].after {
                if let j = known[pred], seen.insert(j).inserted { todo.append(j) }
            }
        }
        return seen
    }

    private func checkMappings(_ i: Int, _ steps: [Node], _ known: [String: Int], form formSchema: FormSchema?, _ w: inout Walker) {
        let p = JSONPath.root.key("steps").index(i).key("input")
        let s = steps[i]
        let action = s.agency.flatMap { catalogues.agencies[$0] }.flatMap { c in s.action.flatMap(c.action) }
        let ancestors = ancestors(i, steps, known)
        let licenceTypes = catalogues.licenceTypes

        func ref(_ text: String, _ at: JSONPath) {
            switch MappingRef.parse(text) {
            case .failure(let e): w.add(.badReference, at, e.message)
            case .success(.form(let path)):
                if let formSchema {
                    if let why = formSchema.problem(path) { w.add(.unknownFormField, at, "'\(text)': \(why)") }
                } else if case .key(let k) = path.first, !Self.formFields.contains(k) {
                    w.add(.unknownFormField, at, "the application form has no field '\(k)'")
                }
            case .success(.licence(let type, _)):
                if !licenceTypes.contains(type) { w.add(.unknownLicence, at, "no action issues licence type '\(type)' (known: \(licenceTypes.sorted().joined(separator: ", ")))") }
            case .success(.stepOutput(let step, let field)):
                guard let j = known[step] else { w.add(.unknownStep, at, "'\(text)' references unknown step '\(step)'"); return }
                guard ancestors.contains(j) else {
                    w.add(.notAPredecessor, at, "'\(text)': step '\(step)' is not a predecessor of '\(s.id ?? "?")' (add it to 'after', directly or transitively)")
                    return
                }
                let other = steps[j]
                if other.agency == BundleDefinition.Wait.agency, other.action == BundleDefinition.Wait.action {
                    return w.add(.unknownOutput, at, "'\(text)': step '\(step)' is a wait step and produces no outputs")
                }
                if let agency = other.agency, let name = other.action, let a = catalogues.agencies[agency]?.action(name), !a.outputs.contains(where: { $0.name == field }) {
                    w.add(.unknownOutput, at, "'\(text)': action '\(a.id)' of step '\(step)' produces no output '\(field)' (it produces: \(a.outputs.map(\.name).joined(separator: ", ")))")
                }
            }
        }
        func walk(_ v: JSONValue, _ at: JSONPath) {
            switch v {
            case .string(let text) where text.hasPrefix("$"): ref(text, at)
            case .array(let xs) where !xs.isEmpty && xs.allSatisfy({ $0.stringValue?.hasPrefix("$") ?? false }):
                for (k, x) in xs.enumerated() { walk(x, at.index(k)) }
            case .object(let o):
                for (k, x) in o.sorted(by: { $0.key < $1.key }) { walk(x, at.key(k)) }
            default: break
            }
        }
        for (k, v) in s.input.sorted(by: { $0.key < $1.key }) {
            walk(v, p.key(k))
            if let action, !action.inputs.contains(where: { $0.name == k }) {
                w.add(.unknownInput, p.key(k), "action '\(action.id)' takes no input '\(k)' (it takes: \(action.inputs.map(\.name).joined(separator: ", ")))")
            }
        }
        if let action {
            for f in action.inputs where f.required ?? true && s.input[f.name] == nil {
                w.add(.missingInput, p, "action '\(action.id)' requires input '\(f.name)'")
            }
        }
    }
}

/// Collects problems while walking the JSON; each accessor reports what is wrong at its path.
private struct Walker {
    let file: String
    var problems: [BundleProblem] = []

    mutating func add(_ kind: BundleProblem.Kind, _ path: JSONPath, _ message: String) {
        problems.append(BundleProblem(file: file, path: path.description, kind: kind, message: message))
    }

    mutating func object(_ v: JSONValue, _ p: JSONPath) -> [String: JSONValue]? {
        if case .object(let o) = v { return o }
        add(.wrongType, p, "must be an object")
        return nil
    }

    mutating func keys(_ o: [String: JSONValue], _ allowed: Set<String>, _ p: JSONPath) {
        for k in o.keys.sorted() where !allowed.contains(k) {
            add(.unknownKey, p.key(k), "unknown key '\(k)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    mutating func string(_ v: JSONValue?, _ p: JSONPath, required: Bool = true) -> String? {
        guard let v else {
            if required { add(.missingField, p.parent, "missing required field '\(p.lastKey ?? "")'") }
            return nil
        }
        guard case .string(let s) = v, !s.isEmpty else { add(.wrongType, p, "must be a non-empty string"); return nil }
        return s
    }

    /// Ids are lowercase words joined by hyphens, so they can sit inside references and request ids.
    mutating func slug(_ v: JSONValue?, _ p: JSONPath) -> String? {
        guard let s = string(v, p) else { return nil }
        let ok = s.first!.isLetter && s.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
        if !ok { add(.badValue, p, "'\(s)' is not a valid id (lowercase letters, digits and '-', starting with a letter)"); return nil }
        return s
    }

    mutating func int(_ v: JSONValue?, _ p: JSONPath, min: Int) -> Int? {
        guard let v else { add(.missingField, p.parent, "missing required field '\(p.lastKey ?? "")'"); return nil }
        guard let n = v.intValue, n >= min else { add(.badValue, p, "must be a whole number ≥ \(min)"); return nil }
        return n
    }

    mutating func duration(_ v: JSONValue?, _ p: JSONPath) -> String? {
        guard let s = string(v, p) else { return nil }
        guard DurationText.parse(s) != nil else {
            add(.badDuration, p, "bad duration '\(s)' (want a positive whole number with a unit: ms, s, m, h, d, e.g. '90s')")
            return nil
        }
        return s
    }

    mutating func policy(_ v: JSONValue?, _ p: JSONPath) -> BundleDefinition.FailurePolicy? {
        guard let s = string(v, p) else { return nil }
        guard let policy = BundleDefinition.FailurePolicy(rawValue: s) else {
            add(.badValue, p, "onFailure must be one of compensate, manual, fail (got '\(s)')")
            return nil
        }
        return policy
    }

}
