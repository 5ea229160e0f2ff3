import Foundation

/// A validated bundle resolved against the catalogues into the index-based form the engine runs:
/// steps by position, predecessors as indices, mappings as slots. Immutable and shared by every
/// saga of this bundle version.
public final class CompiledBundle: Sendable {
    public let definition: BundleDefinition
    public var id: String { definition.id }
    public var version: Int { definition.version }
    public let steps: [CompiledStep]
    /// Form and licence values a saga keeps (the form is projected to these at submit).
    public let external: [ExternalRef]
    /// The form paths of `external` as a tree, so projecting a form walks each object once.
    let formTree: PathTree
    public let slaWorkingMs: Int64
    public let atRiskRemainingMs: Int64

    public enum ExternalRef: Equatable, Sendable {
        case form([JSONValue.PathComponent])
        case licence(type: String, field: String)
    }

    public final class CompiledStep: Sendable {
        public let id: String
        public let agency: String
        public let action: String
        public let predecessors: [Int]
        public let timeoutMs: Int64
        public let attempts: Int
        public let backoffBaseMs: Int64
        public let backoffCapMs: Int64
        public let jitter: Double
        public let retryable: Set<String>
        public let onFailure: BundleDefinition.FailurePolicy
        /// Nil when the action cannot be undone.
        public let compensationAction: String?
        public let issuesLicence: String?
        public let deferrableMaterials: Set<String>
        /// Output fields a saga keeps after success: those later mappings or the compensation read.
        public let retainedOutputs: [String]
        let mapping: ObjectTemplate
        /// Compensation payload field → slot in `retainedOutputs`.
        let compensationInputs: [(String, Int)]

        init(id: String, agency: String, action: String, predecessors: [Int], timeoutMs: Int64, attempts: Int, backoffBaseMs: Int64, backoffCapMs: Int64, jitter: Double, retryable: Set<String>, onFailure: BundleDefinition.FailurePolicy, compensationAction: String?, issuesLicence: String?, deferrableMaterials: Set<String>, retainedOutputs: [String], mapping: ObjectTemplate, compensationInputs: [(String, Int)]) {
            self.id = id
            self.agency = agency
            self.action = action
            self.predecessors = predecessors
            self.timeoutMs = timeoutMs
            self.attempts = attempts
            self.backoffBaseMs = backoffBaseMs
            self.backoffCapMs = backoffCapMs
            self.jitter = jitter
            self.retryable = retryable
            self.onFailure = onFailure
            self.compensationAction = compensationAction
            self.issuesLicence = issuesLicence
            self.deferrableMaterials = deferrableMaterials
            self.retainedOutputs = retainedOutputs
            self.mapping = mapping
            self.compensationInputs = compensationInputs
        }
    }

    indirect enum Mapping: Sendable {
        case external(Int)
        case output(step: Int, slot: Int)
        case coalesce([Mapping])
        case literal(JSONValue)
        case object(ObjectTemplate)
    }

    /// An object mapping prepared for fast evaluation: a dictionary holding every key (values
    /// null) plus the storage index of each key, so filling in a payload copies the template and
    /// writes values by index, without hashing a single key.
    struct ObjectTemplate: Sendable {
        let keys: [String: JSONValue]
        let slots: [(Dictionary<String, JSONValue>.Index, Mapping)]

        init(_ fields: [(String, Mapping)]) {
            let keys = Dictionary(fields.map { ($0.0, JSONValue.null) }, uniquingKeysWith: { a, _ in a })
            self.keys = keys
            slots = fields.map { (keys.index(forKey: $0.0)!, $0.1) }
        }
    }

    /// `definition` must have passed `BundleValidator` against the same catalogues.
    public init(_ definition: BundleDefinition, catalogues: CatalogueSet, calendar: BusinessCalendar) {
        self.definition = definition
        let index = Dictionary(definition.steps.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        slaWorkingMs = Int64(definition.sla.workingDays * Double(calendar.workingMsPerDay))
        atRiskRemainingMs = DurationText.parse(definition.sla.atRiskRemaining) ?? 0

        let actions = definition.steps.map { catalogues.agencies[$0.agency]?.action($0.action) }
        let compensations: [AgencyCatalogue.Action?] = definition.steps.enumerated().map { i, s in
            guard actions[i]?.compensable == true, let name = s.compensation ?? actions[i]?.compensation else { return nil }
            return catalogues.agencies[s.agency]?.action(name)
        }
        // Which outputs must survive in the state: referenced by a mapping, or needed to compensate.
        var retained = [[String]](repeating: [], count: definition.steps.count)
        func noteRefs(_ v: JSONValue) {
            switch v {
            case .string(let s):
                if case .success(.stepOutput(let step, let field))? = MappingRef.isReference(s) ? MappingRef.parse(s) : nil,
                   let j = index[step], !retained[j].contains(field) { retained[j].append(field) }
            case .array(let xs): xs.forEach(noteRefs)
            case .object(let o): o.values.forEach(noteRefs)
            default: break
            }
        }
        for s in definition.steps { s.input.values.forEach(noteRefs) }
        for (i, c) in compensations.enumerated() {
            for f in c?.inputs ?? [] where actions[i]?.outputs.contains(where: { $0.name == f.name }) == true && !retained[i].contains(f.name) {
                retained[i].append(f.name)
            }
        }
        for i in retained.indices { retained[i].sort() }

        var external: [ExternalRef] = []
        func slot(_ r: ExternalRef) -> Int {
            if let i = external.firstIndex(of: r) { return i }
            external.append(r)
            return external.count - 1
        }
        func compile(_ v: JSONValue) -> Mapping {
            switch v {
            case .string(let s) where MappingRef.isReference(s):
                switch MappingRef.parse(s) {
                case .success(.form(let path)): return .external(slot(.form(path)))
                case .success(.licence(let t, let f)): return .external(slot(.licence(type: t, field: f)))
                case .success(.stepOutput(let step, let field)):
                    let j = index[step]!
                    return .output(step: j, slot: retained[j].firstIndex(of: field)!)
                case .failure: return .literal(.null)
                }
            case .array(let xs) where !xs.isEmpty && xs.allSatisfy({ $0.stringValue.map(MappingRef.isReference) ?? false }):
                return .coalesce(xs.map(compile))
            case .object(let o):
                return .object(ObjectTemplate(o.sorted { $0.key < $1.key }.map { ($0.key, compile($0.value)) }))
            default:
                return .literal(v)
            }
        }
        steps = definition.steps.enumerated().map { i, s in
            let comp = compensations[i]
            return CompiledStep(
                id: s.id, agency: s.agency, action: s.action,
                predecessors: s.after.compactMap { index[$0] },
                timeoutMs: DurationText.parse(s.timeout) ?? 60_000,
                attempts: s.retry.attempts,
                backoffBaseMs: DurationText.parse(s.retry.backoffBase) ?? 1000,
                backoffCapMs: DurationText.parse(s.retry.backoffCap) ?? 1000,
                jitter: s.retry.jitter,
                retryable: Set(s.retry.retryableCodes),
                onFailure: s.onFailure,
                compensationAction: comp?.id,
                issuesLicence: actions[i]?.issuesLicence,
                deferrableMaterials: Set(s.deferrableMaterials),
                retainedOutputs: retained[i],
                mapping: ObjectTemplate(s.input.sorted { $0.key < $1.key }.map { ($0.key, compile($0.value)) }),
                compensationInputs: (comp?.inputs ?? []).compactMap { f in retained[i].firstIndex(of: f.name).map { (f.name, $0) } })
        }
        self.external = external
        let tree = PathTree()
        for (slot, ref) in external.enumerated() {
            if case .form(let path) = ref { tree.insert(path[...], slot: slot) }
        }
        formTree = tree
    }

    /// Form paths sharing prefixes. Projection iterates each form object's entries and matches
    /// keys by equality, which for a handful of short keys is far cheaper than hashing per path.
    final class PathTree: @unchecked Sendable {
        // Built once in `init`, read-only afterwards.
        var slots: [Int] = []
        var keys: [(String, PathTree)] = []
        var indices: [(Int, PathTree)] = []

        func insert(_ path: ArraySlice<JSONValue.PathComponent>, slot: Int) {
            guard let first = path.first else { slots.append(slot); return }
            switch first {
            case .key(let k):
                if let child = keys.first(where: { $0.0 == k })?.1 { return child.insert(path.dropFirst(), slot: slot) }
                let child = PathTree()
                keys.append((k, child))
                child.insert(path.dropFirst(), slot: slot)
            case .index(let i):
                if let child = indices.first(where: { $0.0 == i })?.1 { return child.insert(path.dropFirst(), slot: slot) }
                let child = PathTree()
                indices.append((i, child))
                child.insert(path.dropFirst(), slot: slot)
            }
        }

        func project(_ v: JSONValue, into out: inout [JSONValue]) {
            for s in slots { out[s] = v }
            switch v {
            case .object(let o) where !keys.isEmpty:
                var found = 0
                for (k, child) in o {
                    guard let node = keys.first(where: { $0.0 == k })?.1 else { continue }
                    node.project(child, into: &out)
                    found += 1
                    if found == keys.count { break }
                }
            case .array(let a):
                for (i, node) in indices where i < a.count { node.project(a[i], into: &out) }
            default: break
            }
        }
    }

    /// A linear scan: bundles have a handful of steps, and comparing a few strings beats hashing one.
    public func stepIndex(of id: String) -> Int? { steps.firstIndex { $0.id == id } }

    /// Steps grouped by depth in the DAG (level 0 has no predecessors): what runs in parallel.
    public var levels: [[Int]] {
        var depth = [Int](repeating: 0, count: steps.count)
        // Definitions are acyclic once validated; relax until stable (at most n passes).
        for _ in steps.indices {
            var changed = false
            for (i, s) in steps.enumerated() {
                let d = (s.predecessors.map { depth[$0] + 1 }.max() ?? 0)
                if d != depth[i] { depth[i] = d; changed = true }
            }
            if !changed { break }
        }
        return (0...(depth.max() ?? 0)).map { l in steps.indices.filter { depth[$0] == l } }
    }

    // MARK: - evaluation (engine-internal)

    /// The form and licence values a saga keeps, in `external` order; absent values are null.
    func project(form: JSONValue, licences: [String: JSONValue]) -> [JSONValue] {
        var out = [JSONValue](repeating: .null, count: external.count)
        formTree.project(form, into: &out)
        if !licences.isEmpty {
            for (slot, ref) in external.enumerated() {
                if case .licence(let type, let field) = ref { out[slot] = licences[type]?[field] ?? .null }
            }
        }
        return out
    }

    func evaluate(_ m: Mapping, _ state: SagaState) -> JSONValue {
        switch m {
        case .external(let i): return state.external[i]
        case .output(let step, let slot):
            let outs = state.steps[step].outputs
            return slot < outs.count ? outs[slot] : .null
        case .coalesce(let ms):
            for m in ms { let v = evaluate(m, state); if v != .null { return v } }
            return .null
        case .literal(let v): return v
        case .object(let t): return .object(fill(t, state))
        }
    }

    /// Absent values (null) are left out of the object.
    func fill(_ t: ObjectTemplate, _ state: SagaState) -> [String: JSONValue] {
        var o = t.keys
        var sawNull = false
        for (index, m) in t.slots {
            let v = evaluate(m, state)
            if case .null = v { sawNull = true } else { o.values[index] = v }
        }
        if sawNull { o = o.filter { if case .null = $0.value { return false }; return true } }
        return o
    }

    /// The request payload of step `i`: its mapping, then operator corrections and supplements on top.
    func payload(_ i: Int, _ state: SagaState) -> [String: JSONValue] {
        let s = steps[i]
        var o = fill(s.mapping, state)
        if !s.deferrableMaterials.isEmpty { o["deferrableMaterials"] = .array(s.deferrableMaterials.sorted().map(JSONValue.string)) }
        if let extra = state.steps[i].override { o.merge(extra) { _, new in new } }
        return o
    }

    func compensationPayload(_ i: Int, _ state: SagaState) -> [String: JSONValue] {
        var o: [String: JSONValue] = [:]
        let outs = state.steps[i].outputs
        for (k, slot) in steps[i].compensationInputs where slot < outs.count && outs[slot] != .null { o[k] = outs[slot] }
        return o
    }
}
