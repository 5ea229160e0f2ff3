import Departments
import Foundation
import Messaging
import SagaEngine

/// The department simulator of an agency without a Swift model, driven by
/// `adapters/<agency>/department.json` (`DepartmentConfig`). It behaves like the built-in
/// ones (docs/departments.md, "Idempotency and failures"): a final reply is memoized by
/// request id with a fingerprint of the content and replayed byte for byte; the same id with
/// other content is a conflict; transient faults are not memoized; a lost reply's work is done;
/// a compensation without its key undoes what the same saga step did (from the ledger); a
/// forward request after its step was undone is refused with the conflict code.
///
/// A request is checked in order: envelope (else `.unreadable`, no reply), known action,
/// the native request schema (`codes.format`, field at fault = the first violation's path),
/// the rules, the uniqueness key; then the reply template is rendered, counters advance and
/// the effect is recorded. Pure: the same state, bytes and instant give the same result.
public struct ConfigurableDepartment: DepartmentEndpoint {
    public let config: DepartmentConfig
    public let profile: DepartmentProfile
    public private(set) var state = State()

    /// The state file's content (`snapshot`/`restore`): records, counters, memo, deliveries,
    /// withdrawn steps and the effect ledger.
    public struct State: Codable, Sendable, Equatable {
        struct Memo: Codable, Sendable, Equatable {
            var fingerprint: UInt64
            var reply: Data
            var outcome: Outcome
        }
        /// A success of a forward action: its effect key, uniqueness key, stored reply and when it was undone.
        struct Record: Codable, Sendable, Equatable {
            var action: String
            var effectKind: String
            var unique: String?
            var reply: JSONValue
            var endedAt: Date?
        }
        var counters: [String: Int] = [:]
        /// By effect key.
        var records: [String: Record] = [:]
        var memo: [String: Memo] = [:]
        var deliveries: [String: Int] = [:]
        var withdrawn: Set<String> = []
        public var ledger: [LedgerEffect] = []
    }

    /// `preset` chooses the failure rates: `default` the file's `faults`, `no-faults` none,
    /// `flaky` the built-in flaky rates and stretched latencies. `seed` seeds every sampled decision.
    public init(config: DepartmentConfig, preset: DepartmentProfile.Preset = .default, seed: UInt64 = 2026) {
        self.config = config
        var profile = DepartmentProfile.preset(preset, latency: config.actions.mapValues(\.latency), seed: seed)
        if preset == .default {
            profile.transientFaultRate = config.faults.transient
            profile.lostReplyRate = config.faults.lost
            profile.manualRejectionRate = config.faults.manual
        }
        self.profile = profile
    }

    public var agency: Agency { Agency(config.agency) }
    public var ledger: [LedgerEffect] { state.ledger }
    public func snapshot() throws -> Data { try NativeJSON.encoder.encode(state) }
    public mutating func restore(_ snapshot: Data) throws { state = try NativeJSON.decoder.decode(State.self, from: snapshot) }

    public mutating func receive(_ request: Data, at now: Date) -> Handling {
        let env = config.envelope
        guard let json = try? JSONValue.parse(request), case .object(var object) = json,
              let requestId = object[env.requestId]?.stringValue, let action = object[env.action]?.stringValue,
              let sagaId = object[env.sagaRef]?.stringValue, let step = object[env.stepRef]?.stringValue else {
            return Handling(meta: nil, reply: nil, outcome: .unreadable(reason: "no readable envelope (\(env.requestId), \(env.action), \(env.sagaRef), \(env.stepRef))"),
                            replayed: false, latencyMinutes: 0, replyLost: false, effects: [])
        }
        let meta = RequestMeta(requestId: requestId, sagaId: sagaId, step: step, action: action)
        let seed = profile.seed
        let latency = profile.latency(for: action).sample(StableRandom.uniform(seed: seed, requestId, "latency"))
        let fingerprint = NativeJSON.fingerprint(request)
        func answer(_ reply: Data, _ outcome: Outcome, replayed: Bool = false, lost: Bool = false, effects: [LedgerEffect] = []) -> Handling {
            Handling(meta: meta, reply: reply, outcome: outcome, replayed: replayed,
                     latencyMinutes: replayed ? min(1, latency) : latency, replyLost: lost, effects: effects)
        }
        if let memo = state.memo[requestId] {
            guard memo.fingerprint == fingerprint else {
                return answer(errorReply(meta, config.codes.conflict, "request id \(requestId) was already used with a different payload", nil),
                              .conflict(code: config.codes.conflict))
            }
            return answer(memo.reply, memo.outcome, replayed: true)
        }
        let delivery = state.deliveries[requestId, default: 0]
        state.deliveries[requestId] = delivery + 1
        if StableRandom.uniform(seed: seed, requestId, "fault", String(delivery)) < profile.transientFaultRate {
            let codes = config.codes.transient
            let code = codes[Int(StableRandom.hash(requestId + "#\(delivery)", seed: seed) % UInt64(codes.count))]
            return answer(errorReply(meta, code, "temporarily unavailable, retry later", nil), .transientFault(code: code))
        }

        let stepKey = sagaId + "/" + step
        var effects: [LedgerEffect] = []
        let decision: (reply: Data, outcome: Outcome)
        if let spec = config.actions[action] {
            if spec.undo == nil, state.withdrawn.contains(stepKey) {
                decision = reject(meta, config.codes.conflict, "step \(step) of \(sagaId) was withdrawn (compensated) before this request arrived", nil)
            } else if StableRandom.uniform(seed: seed, requestId, "manual-review") < profile.manualRejectionRate {
                decision = reject(meta, config.codes.manualReview, "rejected by manual review", nil)
            } else {
                if let undo = spec.undo, object[undo.field]?.stringValue?.isEmpty ?? true,
                   let done = state.ledger.last(where: { $0.sagaId == sagaId && $0.step == step && $0.kind == undo.effect }) {
                    // The hub never learned the key (its request timed out): what this saga's step did here.
                    object[undo.field] = .string(done.key)
                }
                (decision, effects) = process(spec, meta, object, now: now)
            }
        } else {
            decision = reject(meta, config.codes.unknownAction, "unknown action \(action)", nil)
        }
        state.ledger += effects
        if config.actions[action]?.undo != nil, decision.outcome == .completed { state.withdrawn.insert(stepKey) }
        if decision.outcome.isFinal {
            state.memo[requestId] = .init(fingerprint: fingerprint, reply: decision.reply, outcome: decision.outcome)
        }
        let lost = delivery == 0 && StableRandom.uniform(seed: seed, requestId, "lost") < profile.lostReplyRate
        return answer(decision.reply, decision.outcome, lost: lost, effects: effects)
    }

    // MARK: - One request

    private mutating func process(_ spec: DepartmentConfig.Action, _ meta: RequestMeta, _ object: [String: JSONValue], now: Date)
        -> ((reply: Data, outcome: Outcome), [LedgerEffect]) {
        let request = JSONValue.object(object)
        if let schema = spec.requestSchema, let v = schema.validate(request, limit: 1).first {
            let field = v.path == "$" ? nil : String(v.path.dropFirst(v.path.hasPrefix("$.") ? 2 : 1))
            return (reject(meta, config.codes.format, "message format error: \(v.message)", field), [])
        }
        for rule in spec.rules where rule.when.map({ holds($0, request, now) }) ?? true {
            if !holds(rule.require, request, now) { return (reject(meta, rule.code, rule.message, rule.field), []) }
        }
        if let undo = spec.undo {
            // A compensation: never fails on what is unknown or already undone.
            let key = object[undo.field]?.stringValue ?? ""
            guard var record = state.records[key], record.effectKind == undo.effect else {
                return (complete(meta, render(spec.reply, request: request, record: nil, now: now, counters: [:])), [])
            }
            let first = record.endedAt == nil
            if first { record.endedAt = now; state.records[key] = record }
            let body = render(spec.reply, request: request, record: record.reply, now: record.endedAt ?? now, counters: [:])
            var effects: [LedgerEffect] = []
            if first {
                effects.append(LedgerEffect(agency: agency, requestId: meta.requestId, sagaId: meta.sagaId, step: meta.step,
                                            kind: undo.effect + "-undone", key: key, data: [:], at: now))
            }
            return (complete(meta, body), effects)
        }
        var uniqueValue: String?
        if let unique = spec.unique {
            uniqueValue = request.value(at: unique.key).map(Self.text)
            if let u = uniqueValue, state.records.values.contains(where: { $0.unique == "\(meta.action)|\(u)" && $0.endedAt == nil }) {
                return (reject(meta, unique.code, unique.message, unique.field), [])
            }
        }
        var counters = state.counters
        let body = render(spec.reply, request: request, record: nil, now: now, counters: counters, advancing: &counters)
        state.counters = counters
        var effects: [LedgerEffect] = []
        if let effect = spec.effect {
            let context = JSONValue.object(["request": request, "reply": body])
            func value(_ path: String) -> String? {
                JSONValue.parsePath(path.dropFirst(2)).flatMap { context.value(at: $0) }.map(Self.text)
            }
            let key = value(effect.key) ?? ""
            effects.append(LedgerEffect(agency: agency, requestId: meta.requestId, sagaId: meta.sagaId, step: meta.step,
                                        kind: effect.kind, key: key, data: effect.data.compactMapValues(value), at: now))
            state.records[key] = .init(action: meta.action, effectKind: effect.kind, unique: uniqueValue.map { "\(meta.action)|\($0)" },
                                       reply: body, endedAt: nil)
        }
        return (complete(meta, body), effects)
    }

    // MARK: - Rules

    func holds(_ c: DepartmentConfig.Condition, _ request: JSONValue, _ now: Date) -> Bool {
        switch c {
        case .all(let cs): return cs.allSatisfy { holds($0, request, now) }
        case .any(let cs): return cs.contains { holds($0, request, now) }
        case .not(let inner): return !holds(inner, request, now)
        case let .compare(field, _, op, value, other):
            let lhs = request.value(at: field)
            let rhs = other.map { request.value(at: $0) } ?? value
            switch op {
            case "present": return lhs != nil && lhs != .null
            case "absent": return lhs == nil || lhs == .null
            case "in": return lhs.map { l in rhs?.arrayValue?.contains(l) ?? false } ?? false
            case "matches":
                guard let s = lhs.map(Self.text), let p = rhs?.stringValue, let re = try? NSRegularExpression(pattern: "^(?:" + p + ")$") else { return false }
                return re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
            case "valid-uscc":
                // A code the registry issued is accepted even with a check-character mismatch (codes before 2016).
                guard let code = lhs?.stringValue else { return false }
                do { _ = try USCC.validateIssued(code); return true } catch { return false }
            case "valid-id": return lhs?.stringValue.map { ResidentID.isValid($0, asOf: now) } ?? false
            case "valid-mobile": return lhs?.stringValue.map(MobilePhone.isValid) ?? false
            default:
                guard let l = lhs, let r = rhs else { return false }
                let order: Int
                if let a = l.doubleValue, let b = r.doubleValue { order = a < b ? -1 : (a > b ? 1 : 0) } else {
                    let a = Self.text(l), b = Self.text(r)
                    order = a < b ? -1 : (a > b ? 1 : 0)
                }
                switch op {
                case "==": return order == 0
                case "!=": return order != 0
                case "<": return order < 0
                case "<=": return order <= 0
                case ">": return order > 0
                default: return order >= 0
                }
            }
        }
    }

    // MARK: - Replies

    func render(_ t: JSONValue, request: JSONValue, record: JSONValue?, now: Date, counters: [String: Int]) -> JSONValue {
        var scratch = counters
        return render(t, request: request, record: record, now: now, counters: counters, advancing: &scratch)
    }

    /// Renders a reply template; `$id` advances its counter in `advancing`.
    func render(_ t: JSONValue, request: JSONValue, record: JSONValue?, now: Date, counters: [String: Int],
                advancing: inout [String: Int]) -> JSONValue {
        switch t {
        case .string(let s) where s.hasPrefix("$.request."):
            return JSONValue.parsePath(s.dropFirst(10)).flatMap { request.value(at: $0) } ?? .null
        case .string(let s) where s.hasPrefix("$.record."):
            return JSONValue.parsePath(s.dropFirst(9)).flatMap { record?.value(at: $0) } ?? .null
        case .object(let o):
            if let id = o["$id"] {
                let prefix = id["prefix"].map { Self.text(render($0, request: request, record: record, now: now, counters: counters, advancing: &advancing)) } ?? ""
                let name = (id["counter"]?.stringValue ?? "id") + "|" + prefix
                let n = advancing[name, default: 0] + 1
                advancing[name] = n
                let digits = id["digits"]?.intValue ?? 6
                var body = prefix + String(repeating: "0", count: max(0, digits - String(n).count)) + String(n)
                if let algorithm = id["check"]?.stringValue, let c = CheckDigit.character(algorithm, for: body) { body.append(c) }
                return .string(body)
            }
            if let format = o["$date"]?.stringValue {
                var calendar = Calendar(identifier: .gregorian)
                calendar.timeZone = TimeZone(secondsFromGMT: 8 * 3600)!
                let p = calendar.dateComponents([.year, .month, .day], from: now)
                let sep = format == "yyyy-MM-dd" ? "-" : ""
                return .string(String(format: "%04d%@%02d%@%02d", p.year!, sep, p.month!, sep, p.day!))
            }
            if let counter = o["$counter"]?.stringValue {
                return .number(Double(advancing.filter { $0.key.hasPrefix(counter + "|") }.values.reduce(0, +)))
            }
            var out: [String: JSONValue] = [:]
            for (k, v) in o {
                let r = render(v, request: request, record: record, now: now, counters: counters, advancing: &advancing)
                if r != .null { out[k] = r }
            }
            return .object(out)
        case .array(let a):
            return .array(a.map { render($0, request: request, record: record, now: now, counters: counters, advancing: &advancing) })
        default:
            return t
        }
    }

    func envelopeFields(_ meta: RequestMeta, _ code: String, _ message: String, _ field: String?) -> [String: JSONValue] {
        let e = config.envelope, r = config.reply
        var o: [String: JSONValue] = [e.requestId: .string(meta.requestId), e.action: .string(meta.action),
                                      e.sagaRef: .string(meta.sagaId), e.stepRef: .string(meta.step),
                                      r.code: .string(code), r.message: .string(message)]
        if let field { o[r.field] = .string(field) }
        return o
    }

    func errorReply(_ meta: RequestMeta, _ code: String, _ message: String, _ field: String?) -> Data {
        JSONValue.object(envelopeFields(meta, code, message, field)).data()
    }

    func reject(_ meta: RequestMeta, _ code: String, _ message: String, _ field: String?) -> (reply: Data, outcome: Outcome) {
        (errorReply(meta, code, message, field), .rejected(code: code, field: field))
    }

    func complete(_ meta: RequestMeta, _ body: JSONValue) -> (reply: Data, outcome: Outcome) {
        var o = body.objectValue ?? [:]
        for (k, v) in envelopeFields(meta, config.codes.success, "success", nil) { o[k] = v }
        return (JSONValue.object(o).data(), .completed)
    }

    static func text(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return s
        case .number(let n): return n.rounded() == n && abs(n) < 9e15 ? String(Int(n)) : String(n)
        default: return v.text()
        }
    }
}

/// The department simulator for `agency`: the Swift model when it has one (`Agency.builtIn`),
/// else the configurable simulator of `<adapters>/<agency>/department.json`.
/// Throws `DepartmentConfigError` (every problem with file and JSON path) when that file is
/// missing or wrong.
public func departmentEndpoint(_ agency: Agency, adapters: URL, reference: ReferenceData, preset: DepartmentProfile.Preset,
                               seed: UInt64) throws -> any DepartmentEndpoint {
    if let builtIn = makeDepartment(agency, reference: reference, preset: preset, seed: seed) { return builtIn }
    let config = try DepartmentConfig.load(directory: adapters.appendingPathComponent(agency.rawValue))
    return ConfigurableDepartment(config: config, preset: preset, seed: seed)
}
