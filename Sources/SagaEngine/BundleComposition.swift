/// Bundle composition (`extends`): a bundle file may build on one pinned version of another
/// bundle instead of repeating it, so thirty industry 套餐 are thirty small files over one core.
///
///     { "id": "milk-tea-shop-opening", "version": 1,
///       "extends": { "bundle": "enterprise-opening", "version": 1 },
///       "title": "…", "sla": { "workingDays": 3 },
///       "steps": [ { "id": "food-permit", … }, { "id": "bank-account", "timeout": "6h" } ],
///       "removeSteps": [ "invoices" ] }
///
/// The result is the base's document with, from the extending file: `id`, `version`, and
/// `title`/`description` when given; `sla` and `defaults` merged key by key over the base's; each
/// step whose id the base has merged over it key by key (`input` entry by entry, a `null` entry
/// removes one); new steps appended; `removeSteps` taken out. The composed document is then
/// validated like any bundle. The base version is pinned, so the composed definition (and its
/// fingerprint) changes only when the extending file does — a base version is immutable once
/// sagas run on it, like every version.
///
/// Problems are reported where the author can fix them: in the extending file at the path it
/// wrote (`$.steps[k]` of its own `steps`), or, for a part it inherited, at `$.extends` naming
/// the base file and path.
struct BundleComposer {
    /// Every parseable bundle document by `"<id> v<version>"`: what `extends` may name.
    let documents: [String: (file: String, json: JSONValue)]
    let validator: BundleValidator

    /// Where each step of a composed document came from, for placing problems.
    struct Origin {
        /// Base steps: the base's file and the problem path prefix there (`$.steps[j]`, or an
        /// inherited path of the base's own base).
        var inherited: (file: String, path: String)?
        /// The index in the extending file's `steps` that added or overrode the step, and the keys it set.
        var own: (index: Int, keys: Set<String>)?
    }

    struct Composed {
        var json: JSONValue
        /// One per step of `json`; nil when the file does not extend anything.
        var steps: [Origin]?
        /// Top-level keys the extending file wrote itself.
        var ownKeys: Set<String> = []
        var baseFile: String?
        var problems: [BundleProblem] = []
    }

    static let keys = (extends: "extends", remove: "removeSteps")

    /// Composes `json` (from `file`) over its base, recursively; `visiting` guards cycles.
    func compose(_ json: JSONValue, file: String, visiting: [String] = []) -> Composed {
        guard case .object(var top) = json, let ext = top[Self.keys.extends] else { return Composed(json: json) }
        func fail(_ path: String, _ kind: BundleProblem.Kind, _ message: String) -> Composed {
            Composed(json: json, problems: [BundleProblem(file: file, path: path, kind: kind, message: message)])
        }
        guard let baseId = ext["bundle"]?.stringValue, let baseVersion = ext["version"]?.intValue, baseVersion >= 1,
              ext.objectValue?.count == 2 else {
            return fail("$.extends", .badValue, "want {\"bundle\": \"<id>\", \"version\": <n>}: a base bundle and the version pinned")
        }
        let key = "\(baseId) v\(baseVersion)"
        guard let base = documents[key] else {
            let versions = documents.keys.filter { $0.hasPrefix(baseId + " v") }.sorted()
            return fail("$.extends", .badReference, "no bundle \(key) to extend"
                        + (versions.isEmpty ? " (no bundle '\(baseId)' at all)" : " (there is: \(versions.joined(separator: ", ")))"))
        }
        guard !visiting.contains(key) else {
            return fail("$.extends", .cycle, "extends cycle: \((visiting + [key]).joined(separator: " → "))")
        }
        let composedBase = compose(base.json, file: base.file, visiting: visiting + [key])
        if let cycle = composedBase.problems.first(where: { $0.kind == .cycle }) {
            return fail("$.extends", .cycle, cycle.message)
        }
        let baseProblems = composedBase.problems.isEmpty ? validator.validate(json: composedBase.json, file: base.file).1 : composedBase.problems
        if let first = baseProblems.first {
            return fail("$.extends", .badReference, "the base \(key) has \(baseProblems.count) problem(s); fix it first (\(first))")
        }
        guard case .object(var merged) = composedBase.json, case .array(let baseSteps) = merged["steps"] ?? .null else {
            return fail("$.extends", .badReference, "the base \(key) has no steps")
        }
        var origins: [Origin] = baseSteps.indices.map { j in
            let before = composedBase.steps?[j]
            if let own = before?.own { return Origin(inherited: (base.file, "$.steps[\(own.index)]")) }
            return Origin(inherited: before?.inherited ?? (base.file, "$.steps[\(j)]"))
        }
        var steps = baseSteps
        var problems: [BundleProblem] = []

        for field in ["id", "version", "title", "description"] { if let v = top[field] { merged[field] = v } }
        for field in ["sla", "defaults"] {
            guard let own = top[field] else { continue }
            guard case .object(let fields) = own else { merged[field] = own; continue }  // the validator reports the type
            var combined = merged[field]?.objectValue ?? [:]
            for (k, v) in fields { combined[k] = v }
            merged[field] = .object(combined)
        }
        if let removed = top[Self.keys.remove] {
            if case .array(let ids) = removed {
                for (k, item) in ids.enumerated() {
                    guard let id = item.stringValue, let j = steps.firstIndex(where: { $0["id"]?.stringValue == id }) else {
                        problems.append(BundleProblem(file: file, path: "$.removeSteps[\(k)]", kind: .unknownStep,
                                                      message: "the base \(key) has no step \(item.stringValue.map { "'\($0)'" } ?? item.text())"))
                        continue
                    }
                    steps.remove(at: j)
                    origins.remove(at: j)
                }
            } else {
                problems.append(BundleProblem(file: file, path: "$.removeSteps", kind: .wrongType, message: "'removeSteps' must be an array of step ids"))
            }
        }
        if let own = top["steps"] {
            if case .array(let items) = own {
                for (k, item) in items.enumerated() {
                    guard case .object(let fields) = item, let id = fields["id"]?.stringValue,
                          let j = steps.firstIndex(where: { $0["id"]?.stringValue == id }), case .object(var step) = steps[j] else {
                        steps.append(item)
                        origins.append(Origin(own: (k, Set(item.objectValue.map { Array($0.keys) } ?? []))))
                        continue
                    }
                    for (field, value) in fields where field != "id" {
                        if field == "input", case .object(let entries) = value, case .object(var input) = step["input"] ?? .object([:]) {
                            for (name, mapping) in entries {
                                if mapping == .null { input.removeValue(forKey: name) } else { input[name] = mapping }
                            }
                            step["input"] = .object(input)
                        } else {
                            step[field] = value
                        }
                    }
                    steps[j] = .object(step)
                    origins[j].own = (k, Set(fields.keys))
                }
            } else {
                merged["steps"] = own  // the validator reports the type
            }
        }
        if case .array = merged["steps"] ?? .null { merged["steps"] = .array(steps) }
        top[Self.keys.extends] = nil
        top[Self.keys.remove] = nil
        return Composed(json: .object(merged), steps: origins, ownKeys: Set(top.keys), baseFile: base.file, problems: problems)
    }

    /// Places a problem found in a composed document where its author can fix it.
    func place(_ problem: BundleProblem, in composed: Composed, file: String) -> BundleProblem {
        guard let origins = composed.steps, let baseFile = composed.baseFile else { return problem }
        var p = problem
        p.file = file
        let path = problem.path
        if path.hasPrefix("$.steps["), let close = path.firstIndex(of: "]"),
           let i = Int(path[path.index(path.startIndex, offsetBy: 8)..<close]), i < origins.count {
            let rest = String(path[path.index(after: close)...])
            let key = rest.hasPrefix(".") ? String(rest.dropFirst().prefix { $0 != "." && $0 != "[" }) : ""
            let origin = origins[i]
            if let own = origin.own, origin.inherited == nil || key.isEmpty || own.keys.contains(key) {
                p.path = "$.steps[\(own.index)]" + rest
            } else if let inherited = origin.inherited {
                p.path = "$.extends"
                p.message = "inherited step (\(inherited.file): \(inherited.path + rest)): \(problem.message)"
            }
            return p
        }
        let top = path.dropFirst(2).prefix { $0 != "." && $0 != "[" }
        if path.hasPrefix("$."), !top.isEmpty, !composed.ownKeys.contains(String(top)) {
            p.path = "$.extends"
            p.message = "inherited from \(baseFile): \(path): \(problem.message)"
        }
        return p
    }
}
