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
    /// `steps[i].id.utf8.count`, for `stepIndex(of:)`.
    let stepIdLengths: [Int]
    /// `steps[i].id`: reading an id from here does not retain and release the `CompiledStep`.
    let stepIds: [String]
    /// Every step's predecessors in one flat array: step `i`'s are
    /// `predecessorIndices[predecessorStart[i]..<predecessorStart[i + 1]]`. Checking readiness
    /// reads plain Ints, without retaining each `CompiledStep` and its `predecessors` array.
    let predecessorStart: [Int]
    let predecessorIndices: [Int]
    /// The file the definition was loaded from, when known (for messages).
    public let file: String?
    /// SHA-256 (hex) of the definition's canonical content: the validated definition as JSON with
    /// sorted keys and defaults folded in (so whitespace, key order and spelling out a default do
    /// not count), plus the layout a saga's state is indexed by (each step's retained outputs and
    /// the form and licence slots, which the catalogues shape). A saga keeps the fingerprint of the
    /// definition it started on (`SagaState.definitionFingerprint`); a different fingerprint for
    /// the same id and version means the version was edited in place.
    public let fingerprint: String

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
        /// `retainedOutputs[j].utf8.count`, for `retain(_:)`.
        let retainedLengths: [Int]
        let mapping: ObjectTemplate
        /// The request payload's field names as the bundle's mapping builds them (sorted).
        public var payloadFields: [String] { mapping.keys.keys.sorted() }
        /// Compensation payload field → slot in `retainedOutputs`.
        let compensationInputs: [(String, Int)]
        /// A wait step's period (nil on agency steps): its length in ms, wall time (`natural`)
        /// or working time on the bundle's calendar (`working`).
        public let wait: (ms: Int64, working: Bool)?
        public var isWait: Bool { wait != nil }

        init(id: String, agency: String, action: String, predecessors: [Int], timeoutMs: Int64, attempts: Int, backoffBaseMs: Int64, backoffCapMs: Int64, jitter: Double, retryable: Set<String>, onFailure: BundleDefinition.FailurePolicy, compensationAction: String?, issuesLicence: String?, deferrableMaterials: Set<String>, retainedOutputs: [String], mapping: ObjectTemplate, compensationInputs: [(String, Int)], wait: (ms: Int64, working: Bool)? = nil) {
            self.wait = wait
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
            retainedLengths = retainedOutputs.map(\.utf8.count)
            self.mapping = mapping
            self.compensationInputs = compensationInputs
        }

        /// The outputs a saga keeps from a success answer, aligned with `retainedOutputs`
        /// (absent = null). Answers carry a few fields: one pass over them, matching names by
        /// length and then `==`, is much cheaper than hashing every retained name; large answers
        /// still use lookups.
        func retain(_ outputs: [String: JSONValue]) -> [JSONValue] {
            if retainedOutputs.isEmpty { return [] }
            guard outputs.count <= 2 * retainedOutputs.count + 2 else { return retainedOutputs.map { outputs[$0] ?? .null } }
            if retainedOutputs.count == 1 {
                // The common case: one kept output, returned in a one-element array (no null
                // fill to overwrite).
                let n = retainedLengths[0]
                for (k, v) in outputs where k.utf8.count == n && k == retainedOutputs[0] { return [v] }
                return [.null]
            }
            var kept = [JSONValue].filled(.null, count: retainedOutputs.count)
            var found = 0
            for (k, v) in outputs {
                let n = k.utf8.count
                for j in retainedLengths.indices where retainedLengths[j] == n && retainedOutputs[j] == k {
                    kept[j] = v
                    found += 1
                    break
                }
                if found == retainedOutputs.count { break }
            }
            return kept
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
        let slots: [(Dictionary<String, JSONValue>.Index, Slot)]
        /// The template has a `materials` field (so `payload` must merge supplements); kept so
        /// the common payload without one costs no lookup.
        let hasMaterials: Bool

        /// The two common mappings unboxed (`Mapping` is indirect, so every case is a heap box
        /// to load through); anything else goes through `evaluate`.
        enum Slot: Sendable {
            case external(Int)
            case output(step: Int, slot: Int)
            case other(Mapping)
        }

        init(_ fields: [(String, Mapping)]) {
            let keys = Dictionary(fields.map { ($0.0, JSONValue.null) }, uniquingKeysWith: { a, _ in a })
            self.keys = keys
            hasMaterials = keys["materials"] != nil
            slots = fields.map { f in
                let slot: Slot
                switch f.1 {
                case .external(let i): slot = .external(i)
                case .output(let step, let s): slot = .output(step: step, slot: s)
                default: slot = .other(f.1)
                }
                return (keys.index(forKey: f.0)!, slot)
            }
        }
    }

    /// `definition` must have passed `BundleValidator` against the same catalogues.
    public init(_ definition: BundleDefinition, catalogues: CatalogueSet, calendar: BusinessCalendar, file: String? = nil) {
        self.definition = definition
        self.file = file
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
        // `deferrableMaterials` is a constant of the step: put it in the payload template as a
        // literal (replacing any mapped field of that name, as the old post-fill write did), so a
        // dispatch neither sorts the set nor grows the filled dictionary to insert one more key.
        func payloadFields(_ fields: [(String, Mapping)], deferrable: [String]) -> [(String, Mapping)] {
            guard !deferrable.isEmpty else { return fields }
            let value = JSONValue.array(Set(deferrable).sorted().map(JSONValue.string))
            return fields.filter { $0.0 != "deferrableMaterials" } + [("deferrableMaterials", .literal(value))]
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
                mapping: ObjectTemplate(payloadFields(s.input.sorted { $0.key < $1.key }.map { ($0.key, compile($0.value)) }, deferrable: s.deferrableMaterials)),
                compensationInputs: (comp?.inputs ?? []).compactMap { f in retained[i].firstIndex(of: f.name).map { (f.name, $0) } },
                wait: s.wait.map { w in
                    w.calendar == .natural ? (Int64(w.days) * 86_400_000, false) : (Int64(w.days) * calendar.workingMsPerDay, true)
                })
        }
        self.external = external
        stepIdLengths = steps.map { $0.id.utf8.count }
        stepIds = steps.map(\.id)
        var start = [0]
        for s in steps { start.append(start.last! + s.predecessors.count) }
        predecessorStart = start
        predecessorIndices = steps.flatMap(\.predecessors)
        let tree = PathTree.Builder()
        for (slot, ref) in external.enumerated() {
            if case .form(let path) = ref { tree.insert(path[...], slot: slot) }
        }
        formTree = PathTree(tree)
        fingerprint = Self.fingerprint(definition, steps: steps, external: external)
    }

    static func fingerprint(_ definition: BundleDefinition, steps: [CompiledStep], external: [ExternalRef]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // `extends` only says how the file was written: the composed steps are what sagas run on,
        // so a bundle rewritten over its base with the same result keeps its fingerprint.
        var composed = definition
        composed.extends = nil
        var content = (try? encoder.encode(composed)) ?? Data()
        let layout = steps.map { "\($0.id):\($0.retainedOutputs.joined(separator: ","))" }.joined(separator: ";") + "|"
            + external.map { ref in
                switch ref {
                case .form(let path): return "form:" + path.map { c in
                    switch c { case .key(let k): return "." + k; case .index(let i): return "[\(i)]" }
                }.joined()
                case .licence(let type, let field): return "licence:\(type).\(field)"
                }
            }.joined(separator: ",")
        content.append(Data(layout.utf8))
        return SHA256.hex(content)
    }

    /// Form paths sharing prefixes. Projection iterates each form object's entries and matches
    /// keys by equality, which for a handful of short keys is far cheaper than hashing per path.
    /// Immutable (`let` only): mutable class properties would cost a dynamic exclusivity check on
    /// every read during projection.
    final class PathTree: Sendable {
        let slots: [Int]
        /// Child keys as parallel arrays, with each key's UTF-8 length: the inner matching loop
        /// compares plain Ints (O(1) to get from a native string) and only calls `==` when the
        /// lengths agree, and never copies (retains) a key or node it does not use.
        let keyLengths: [Int]
        let keys: [String]
        let children: [PathTree]
        /// For a child that is a leaf with one slot (most form fields a mapping reads), that
        /// slot, written directly instead of calling `project` on the child; else -1.
        let leafSlots: [Int]
        let indices: [(Int, PathTree)]

        init(_ b: Builder) {
            slots = b.slots
            keys = b.keys.map(\.0)
            keyLengths = keys.map(\.utf8.count)
            children = b.keys.map { PathTree($0.1) }
            leafSlots = children.map { $0.keys.isEmpty && $0.indices.isEmpty && $0.slots.count == 1 ? $0.slots[0] : -1 }
            indices = b.indices.map { ($0.0, PathTree($0.1)) }
        }

        /// Mutable form used while compiling.
        final class Builder {
            var slots: [Int] = []
            var keys: [(String, Builder)] = []
            var indices: [(Int, Builder)] = []

            func insert(_ path: ArraySlice<JSONValue.PathComponent>, slot: Int) {
                guard let first = path.first else { slots.append(slot); return }
                switch first {
                case .key(let k):
                    if let child = keys.first(where: { $0.0 == k })?.1 { return child.insert(path.dropFirst(), slot: slot) }
                    let child = Builder()
                    keys.append((k, child))
                    child.insert(path.dropFirst(), slot: slot)
                case .index(let i):
                    if let child = indices.first(where: { $0.0 == i })?.1 { return child.insert(path.dropFirst(), slot: slot) }
                    let child = Builder()
                    indices.append((i, child))
                    child.insert(path.dropFirst(), slot: slot)
                }
            }
        }

        /// Writes through a buffer pointer: the slots are valid by construction, and an `inout`
        /// array paid a uniqueness check and bounds check per written value.
        func project(_ v: JSONValue, into out: UnsafeMutableBufferPointer<JSONValue>) {
            for s in slots { out[s] = v }
            switch v {
            case .object(let o) where !keys.isEmpty:
                var found = 0
                for (k, child) in o {
                    let n = k.utf8.count
                    for j in keyLengths.indices where keyLengths[j] == n && keys[j] == k {
                        if leafSlots[j] >= 0 { out[leafSlots[j]] = child } else { children[j].project(child, into: out) }
                        found += 1
                        break
                    }
                    if found == keys.count { break }
                }
            case .array(let a):
                for (i, node) in indices where i < a.count { node.project(a[i], into: out) }
            default: break
            }
        }
    }

    /// A linear scan: bundles have a handful of steps, and comparing a few strings beats hashing one.
    /// The UTF-8 length is checked first (O(1)): a mismatching `==` otherwise goes through the
    /// runtime's full string comparison for every step before the right one.
    public func stepIndex(of id: String) -> Int? {
        let n = id.utf8.count
        for i in stepIds.indices where stepIdLengths[i] == n && stepIds[i] == id { return i }
        return nil
    }

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
        var out = [JSONValue].filled(.null, count: external.count)
        out.withUnsafeMutableBufferPointer { formTree.project(form, into: $0) }
        if !licences.isEmpty {
            for (slot, ref) in external.enumerated() {
                if case .licence(let type, let field) = ref { out[slot] = licences[type]?[field] ?? .null }
            }
        }
        return out
    }

    // These take the two arrays they read rather than the whole `SagaState`: passing the state
    // from a mutating engine method copied it (retaining and releasing every field) per dispatch.

    func evaluate(_ m: Mapping, _ external: [JSONValue], _ steps: [StepState]) -> JSONValue {
        switch m {
        case .external(let i): return external[i]
        case .output(let step, let slot):
            let outs = steps[step].outputs
            return slot < outs.count ? outs[slot] : .null
        case .coalesce(let ms):
            for m in ms { let v = evaluate(m, external, steps); if v != .null { return v } }
            return .null
        case .literal(let v): return v
        case .object(let t): return .object(fill(t, external, steps))
        }
    }

    /// Absent values (null) are left out of the object.
    func fill(_ t: ObjectTemplate, _ external: [JSONValue], _ steps: [StepState]) -> [String: JSONValue] {
        var o = t.keys
        var sawNull = false
        for (index, m) in t.slots {
            let v: JSONValue
            switch m {
            case .external(let i): v = external[i]
            case .output(let step, let slot):
                let outs = steps[step].outputs
                v = slot < outs.count ? outs[slot] : .null
            case .other(let m): v = evaluate(m, external, steps)
            }
            if case .null = v { sawNull = true } else { o.values[index] = v }
        }
        if sawNull { o = o.filter { if case .null = $0.value { return false }; return true } }
        return o
    }

    /// The request payload of step `i`: its mapping (with `deferrableMaterials`, see
    /// `payloadFields`), then operator corrections and supplements on top.
    func payload(_ i: Int, _ external: [JSONValue], _ steps: [StepState]) -> [String: JSONValue] {
        var o = fill(self.steps[i].mapping, external, steps)
        let extra = steps[i].override
        if let extra { o.merge(extra) { _, new in new } }
        // A material handed in once serves every agency that reads the materials (一窗: the
        // window forwards it), so a later step does not ask the applicant again. (`o` can only
        // have `materials` from the template or the override: checked first, without hashing.)
        // Only overrides carry supplements: with none on any step the merge below would write
        // back `o`'s own `supplements` unchanged, so it is skipped without hashing a key (by
        // index, as `for s in steps` copied every StepState).
        var anyOverride = extra != nil
        if !anyOverride { for j in steps.indices where steps[j].override != nil { anyOverride = true; break } }
        if anyOverride, self.steps[i].mapping.hasMaterials || extra?["materials"] != nil, o["materials"] != nil {
            var supplied = o["supplements"]?.objectValue ?? [:]
            for s in steps { supplied.merge(s.override?["supplements"]?.objectValue ?? [:]) { own, _ in own } }
            if !supplied.isEmpty { o["supplements"] = .object(supplied) }
        }
        return o
    }

    func compensationPayload(_ i: Int, _ steps: [StepState]) -> [String: JSONValue] {
        var o: [String: JSONValue] = [:]
        let outs = steps[i].outputs
        for (k, slot) in self.steps[i].compensationInputs where slot < outs.count && outs[slot] != .null { o[k] = outs[slot] }
        return o
    }
}
