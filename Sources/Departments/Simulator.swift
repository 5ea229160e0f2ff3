import Foundation

/// An agency id: the `<agency>` in topic names and the directory `adapters/<agency>/`.
/// Agencies are not a closed set: the hub serves every agency with a catalogue under
/// `adapters/`. The five below have a department simulator written in Swift (`builtIn`); any
/// other runs the configurable simulator (`adapters/<agency>/department.json`).
/// Encodes as its id string (`"tax"`), as the enumeration it replaced did.
public struct Agency: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ id: String) { rawValue = id }
    public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
    public var description: String { rawValue }

    public static let businessRegistration = Agency("business-registration")
    public static let sealEngraving = Agency("seal-engraving")
    public static let tax = Agency("tax")
    public static let socialSecurity = Agency("social-security")
    public static let bank = Agency("bank")
    /// The agencies whose simulator is a Swift model (`makeDepartment` builds them).
    public static let builtIn: [Agency] = [.businessRegistration, .sealEngraving, .tax, .socialSecurity, .bank]
    /// True when `makeDepartment` has a Swift model for this agency.
    public var isBuiltIn: Bool { Self.builtIn.contains(self) }
}

/// What every native request carries, whatever the department calls the fields.
public struct RequestMeta: Codable, Sendable, Equatable {
    public var requestId: String
    public var sagaId: String
    public var step: String
    /// The native action code (`MCSB`, `ENGRAVE`, `acmt.007`, …).
    public var action: String

    public init(requestId: String, sagaId: String, step: String, action: String) {
        self.requestId = requestId; self.sagaId = sagaId; self.step = step; self.action = action
    }
}

/// One effect a department produced in the real world (a name reserved, a seal on record,
/// an account opened). The ledger is what tests audit for duplicate effects.
public struct LedgerEffect: Codable, Sendable, Equatable {
    public var agency: Agency
    public var requestId: String
    public var sagaId: String
    public var step: String
    /// e.g. `name-reserved`, `enterprise-registered`, `seal-engraved`, `account-opened`.
    public var kind: String
    /// The business key of the effect (reservation number, USCC, seal record number, account number).
    public var key: String
    public var data: [String: String]
    public var at: Date

    public init(agency: Agency, requestId: String, sagaId: String, step: String, kind: String, key: String, data: [String: String], at: Date) {
        self.agency = agency; self.requestId = requestId; self.sagaId = sagaId; self.step = step
        self.kind = kind; self.key = key; self.data = data; self.at = at
    }
}

/// An effect as the business logic reports it; the simulator stamps request, saga, step and time.
public struct EffectDraft: Sendable, Equatable {
    public var kind: String
    public var key: String
    public var data: [String: String]

    public init(kind: String, key: String, data: [String: String] = [:]) {
        self.kind = kind; self.key = key; self.data = data
    }
}

/// How a request ended, in canonical terms (the native reply says the same in the department's words).
public enum Outcome: Codable, Sendable, Equatable {
    case completed
    /// A business rejection: final, memoized, `field` names the native field at fault.
    case rejected(code: String, field: String?)
    /// A retryable fault: nothing happened, not memoized; the same request may be sent again.
    case transientFault(code: String)
    /// The request id was reused with a different payload; nothing happened, not memoized.
    case conflict(code: String)
    /// Not even the envelope (request id, action) could be read: no reply, goes to the DLQ.
    case unreadable(reason: String)

    public var isFinal: Bool {
        switch self {
        case .completed, .rejected: true
        case .transientFault, .conflict, .unreadable: false
        }
    }
}

/// The business logic's answer to one request.
public struct Decision: Sendable {
    public var reply: Data
    public var outcome: Outcome
    public var effects: [EffectDraft]

    public init(reply: Data, outcome: Outcome, effects: [EffectDraft] = []) {
        self.reply = reply; self.outcome = outcome; self.effects = effects
    }
}

/// The result of delivering one native request to a simulator.
public struct Handling: Sendable {
    /// nil when the message was unreadable.
    public var meta: RequestMeta?
    /// The native reply; nil only when unreadable (the caller sends the message to the DLQ).
    public var reply: Data?
    public var outcome: Outcome
    /// True when the reply is the memoized answer to an earlier delivery of the same request id.
    public var replayed: Bool
    /// Working minutes after which the reply is due (the caller converts them on its business calendar).
    public var latencyMinutes: Int
    /// True when the department did the work but its reply is lost: the caller publishes nothing.
    public var replyLost: Bool
    /// Effects of this delivery (already appended to the state's ledger).
    public var effects: [LedgerEffect]

    public init(meta: RequestMeta?, reply: Data?, outcome: Outcome, replayed: Bool, latencyMinutes: Int, replyLost: Bool, effects: [LedgerEffect]) {
        self.meta = meta; self.reply = reply; self.outcome = outcome; self.replayed = replayed
        self.latencyMinutes = latencyMinutes; self.replyLost = replyLost; self.effects = effects
    }
}

/// A native message: the department's envelope fields and the action's body fields side by
/// side in one flat JSON object, as departments send them.
public struct NativeMessage<Envelope: Codable & Sendable, Body: Codable & Sendable>: Codable, Sendable {
    public var envelope: Envelope
    public var body: Body

    public init(envelope: Envelope, body: Body) {
        self.envelope = envelope; self.body = body
    }

    public init(from decoder: Decoder) throws {
        envelope = try Envelope(from: decoder)
        body = try Body(from: decoder)
    }

    public func encode(to encoder: Encoder) throws {
        try envelope.encode(to: encoder)
        try body.encode(to: encoder)
    }
}

/// A body without fields (error replies).
public struct NoFields: Codable, Sendable, Equatable {
    public init() {}
}

/// The body of one native request; `action` is its code in the department's vocabulary.
public protocol NativeRequestBody: Codable, Sendable {
    static var action: String { get }
}

/// The fields every request of one department carries: request id, action, saga and step reference.
public protocol NativeRequestEnvelope: Codable, Sendable {
    init(meta: RequestMeta)
    var meta: RequestMeta { get }
}

/// The fields every reply of one department carries: the request's references and a result code.
public protocol NativeReplyEnvelope: Codable, Sendable {
    init(meta: RequestMeta, code: String, message: String, field: String?)
}

/// A department's business logic and native vocabulary. Implementations are pure.
public protocol DepartmentModel: Sendable {
    associatedtype Books: Codable, Sendable, Equatable
    associatedtype RequestEnvelope: NativeRequestEnvelope
    associatedtype ReplyEnvelope: NativeReplyEnvelope
    static var agency: Agency { get }
    static var successCode: String { get }
    /// Code for a request whose fields cannot be decoded (the reply names the field).
    static var formatErrorCode: String { get }
    /// Code for an action this department does not offer.
    static var unknownActionCode: String { get }
    /// Retryable fault codes.
    static var transientCodes: [String] { get }
    /// Code for "request id already used with a different payload".
    static var conflictCode: String { get }
    /// Code for a rejection by manual review (injected by the failure profile).
    static var manualReviewCode: String { get }
    /// Typical latency per native action, in working minutes.
    static var typicalLatency: [String: LatencyDistribution] { get }
    static var emptyBooks: Books { get }

    /// The business logic for a request whose envelope was read.
    func process(_ request: Data, meta: RequestMeta, books: inout Books, now: Date) -> Decision

    /// For each compensation action (by native code): which request field names what to undo,
    /// and which ledger effect of the forward action holds that value. When the hub never
    /// learned a step's outcome (its request timed out) it sends the compensation without
    /// that field; the department then finds what the same saga's step did in its own records
    /// (the request's saga and step references), and answers success with nothing undone when
    /// the step did nothing. Empty by default.
    static var undoTargets: [String: UndoTarget] { get }
}

/// Where a compensation request's key comes from when the hub could not send it: `field` is a
/// dotted path in the native request (`mcblh`, `Acct.Id`), filled from the newest ledger effect
/// of kind `effect` recorded for the same saga and step (its `key`, or `data[dataField]`).
public struct UndoTarget: Sendable, Equatable {
    public var field: String
    public var effect: String
    public var dataField: String?

    public init(field: String, effect: String, dataField: String? = nil) {
        self.field = field; self.effect = effect; self.dataField = dataField
    }
}

extension DepartmentModel {
    public static var undoTargets: [String: UndoTarget] { [:] }
}

extension DepartmentModel {
    /// Reads request id, saga id, step and action; nil if the message is not readable at all.
    public func envelope(of request: Data) -> RequestMeta? {
        (try? JSONDecoder().decode(RequestEnvelope.self, from: request))?.meta
    }

    /// The native bytes of a request (what an adapter sends).
    public static func request<Body: NativeRequestBody>(_ body: Body, requestId: String, sagaId: String, step: String) -> Data {
        let meta = RequestMeta(requestId: requestId, sagaId: sagaId, step: step, action: Body.action)
        return NativeJSON.encode(NativeMessage(envelope: RequestEnvelope(meta: meta), body: body))
    }

    public func errorReply(meta: RequestMeta, code: String, message: String, field: String?) -> Data {
        NativeJSON.encode(NativeMessage(envelope: ReplyEnvelope(meta: meta, code: code, message: message, field: field), body: NoFields()))
    }

    public func reject(_ meta: RequestMeta, _ code: String, _ message: String, field: String?) -> Decision {
        Decision(reply: errorReply(meta: meta, code: code, message: message, field: field),
                 outcome: .rejected(code: code, field: field))
    }

    public func complete<Body: Codable & Sendable>(_ meta: RequestMeta, _ body: Body, effects: [EffectDraft]) -> Decision {
        let envelope = ReplyEnvelope(meta: meta, code: Self.successCode, message: "success", field: nil)
        return Decision(reply: NativeJSON.encode(NativeMessage(envelope: envelope, body: body)), outcome: .completed, effects: effects)
    }

    /// Decodes the request body and runs `run` on it; a missing or mistyped field becomes a
    /// rejection naming the native field at fault.
    public func with<Body: NativeRequestBody>(_ type: Body.Type, _ data: Data, _ meta: RequestMeta, _ run: (Body) -> Decision) -> Decision {
        let body: Body
        do {
            body = try JSONDecoder().decode(Body.self, from: data)
        } catch {
            let (field, why) = NativeJSON.describe(error)
            return reject(meta, Self.formatErrorCode, "message format error: \(why)", field: field)
        }
        return run(body)
    }

    public func unknownAction(_ meta: RequestMeta) -> Decision {
        reject(meta, Self.unknownActionCode, "unknown action \(meta.action)", field: nil)
    }
}

/// A department's whole state: its business records, the memo of final replies by request id,
/// how often each request id was delivered, and the effect ledger. Codable for snapshots.
public struct DepartmentState<Books: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var books: Books
    public var ledger: [LedgerEffect]
    struct Memo: Codable, Sendable, Equatable {
        var fingerprint: UInt64
        var reply: Data
        var outcome: Outcome
    }
    var memo: [String: Memo]
    var deliveries: [String: Int]
    /// `saga/step` of every step a compensation was processed for (withdrawn): a forward request
    /// of that step arriving afterwards (a dead letter replayed late) must not act, or the undo
    /// would not hold. Optional, so snapshots written before it existed still load.
    var withdrawn: Set<String>?

    public init(books: Books) {
        self.books = books; ledger = []; memo = [:]; deliveries = [:]
    }
}

/// A simulated department: `(state, native request, now) -> (state', reply, effects)`.
/// Pure and deterministic: the same state, bytes and instant always give the same result.
public struct DepartmentSimulator<Model: DepartmentModel>: Sendable {
    public let model: Model
    public let profile: DepartmentProfile

    public init(model: Model, profile: DepartmentProfile) {
        self.model = model; self.profile = profile
    }

    public init(model: Model, preset: DepartmentProfile.Preset = .default, seed: UInt64 = 2026) {
        self.init(model: model, profile: .preset(preset, latency: Model.typicalLatency, seed: seed))
    }

    public var initialState: DepartmentState<Model.Books> { DepartmentState(books: Model.emptyBooks) }

    public func handle(_ state: DepartmentState<Model.Books>, request: some Encodable, now: Date)
        -> (DepartmentState<Model.Books>, Handling) {
        handle(state, request: NativeJSON.encode(request), now: now)
    }

    public func handle(_ state: DepartmentState<Model.Books>, request: Data, now: Date)
        -> (DepartmentState<Model.Books>, Handling) {
        guard let meta = model.envelope(of: request) else {
            return (state, Handling(meta: nil, reply: nil, outcome: .unreadable(reason: "no readable envelope"),
                                    replayed: false, latencyMinutes: 0, replyLost: false, effects: []))
        }
        var state = state
        let seed = profile.seed
        let latency = profile.latency(for: meta.action).sample(StableRandom.uniform(seed: seed, meta.requestId, "latency"))
        let fingerprint = NativeJSON.fingerprint(request)
        func answer(_ reply: Data, _ outcome: Outcome, replayed: Bool = false, lost: Bool = false, effects: [LedgerEffect] = []) -> (DepartmentState<Model.Books>, Handling) {
            // A repeated request is answered from the memo: a lookup, not the work again.
            (state, Handling(meta: meta, reply: reply, outcome: outcome, replayed: replayed,
                             latencyMinutes: replayed ? min(1, latency) : latency, replyLost: lost, effects: effects))
        }

        if let memo = state.memo[meta.requestId] {
            guard memo.fingerprint == fingerprint else {
                let code = Model.conflictCode
                return answer(model.errorReply(meta: meta, code: code, message: "request id \(meta.requestId) was already used with a different payload", field: nil), .conflict(code: code))
            }
            return answer(memo.reply, memo.outcome, replayed: true)
        }

        let delivery = state.deliveries[meta.requestId, default: 0]
        state.deliveries[meta.requestId] = delivery + 1
        if StableRandom.uniform(seed: seed, meta.requestId, "fault", String(delivery)) < profile.transientFaultRate {
            let codes = Model.transientCodes
            let code = codes[Int(StableRandom.hash(meta.requestId + "#\(delivery)", seed: seed) % UInt64(codes.count))]
            return answer(model.errorReply(meta: meta, code: code, message: "temporarily unavailable, retry later", field: nil),
                          .transientFault(code: code))
        }

        let decision: Decision
        let stepKey = meta.sagaId + "/" + meta.step
        if Model.undoTargets[meta.action] == nil, state.withdrawn?.contains(stepKey) == true {
            // The step was undone before this request arrived: acting now would outlive the undo.
            decision = model.reject(meta, Model.conflictCode, "step \(meta.step) of \(meta.sagaId) was withdrawn (compensated) before this request arrived", field: nil)
        } else if StableRandom.uniform(seed: seed, meta.requestId, "manual-review") < profile.manualRejectionRate {
            decision = model.reject(meta, Model.manualReviewCode, "rejected by manual review", field: nil)
        } else if let target = Model.undoTargets[meta.action] {
            // A compensation without its key (the hub never learned the step's outcome) undoes
            // what this saga's step did here, if anything.
            if let filled = Self.fillUndoKey(request, target, meta, ledger: state.ledger) {
                decision = model.process(filled, meta: meta, books: &state.books, now: now)
            } else {
                // Envelope only (no result fields): success, nothing undone.
                let envelope = Model.ReplyEnvelope(meta: meta, code: Model.successCode, message: "nothing on record for this saga step; nothing undone", field: nil)
                decision = Decision(reply: NativeJSON.encode(NativeMessage(envelope: envelope, body: NoFields())), outcome: .completed)
            }
        } else {
            decision = model.process(request, meta: meta, books: &state.books, now: now)
        }
        let effects = decision.effects.map {
            LedgerEffect(agency: Model.agency, requestId: meta.requestId, sagaId: meta.sagaId, step: meta.step,
                         kind: $0.kind, key: $0.key, data: $0.data, at: now)
        }
        state.ledger += effects
        if Model.undoTargets[meta.action] != nil, decision.outcome == .completed {
            state.withdrawn = (state.withdrawn ?? []).union([stepKey])
        }
        if decision.outcome.isFinal {
            state.memo[meta.requestId] = .init(fingerprint: fingerprint, reply: decision.reply, outcome: decision.outcome)
        }
        let lost = delivery == 0 && StableRandom.uniform(seed: seed, meta.requestId, "lost") < profile.lostReplyRate
        return answer(decision.reply, decision.outcome, lost: lost, effects: effects)
    }
}

extension DepartmentSimulator {
    /// The request to process for a compensation: unchanged when it names its target; with the
    /// target filled in from the ledger when it does not; nil when the saga's step left no such
    /// effect here (nothing to undo).
    static func fillUndoKey(_ request: Data, _ target: UndoTarget, _ meta: RequestMeta, ledger: [LedgerEffect]) -> Data? {
        guard var object = (try? JSONSerialization.jsonObject(with: request)) as? [String: Any] else { return request }
        let path = target.field.split(separator: ".").map(String.init)
        func value(_ o: [String: Any], _ p: ArraySlice<String>) -> Any? {
            guard let first = p.first else { return nil }
            return p.count == 1 ? o[first] : (o[first] as? [String: Any]).flatMap { value($0, p.dropFirst()) }
        }
        if let present = value(object, path[...]) as? String, !present.isEmpty { return request }
        guard let effect = ledger.last(where: { $0.sagaId == meta.sagaId && $0.step == meta.step && $0.kind == target.effect }),
              let key = target.dataField.map({ effect.data[$0] }) ?? effect.key else { return nil }
        func setting(_ o: [String: Any], _ p: ArraySlice<String>) -> [String: Any] {
            var o = o
            guard let first = p.first else { return o }
            o[first] = p.count == 1 ? key : setting(o[first] as? [String: Any] ?? [:], p.dropFirst())
            return o
        }
        object = setting(object, path[...])
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? request
    }
}

/// A simulator together with its state, behind one type for all five departments: what the
/// Kafka side keeps per agency. `receive` is the pure `handle` with the state kept in place.
public protocol DepartmentEndpoint: Sendable {
    var agency: Agency { get }
    var ledger: [LedgerEffect] { get }
    mutating func receive(_ request: Data, at now: Date) -> Handling
    /// The state as JSON (for snapshots); `restore` reads it back.
    func snapshot() throws -> Data
    mutating func restore(_ snapshot: Data) throws
}

public struct RunningDepartment<Model: DepartmentModel>: DepartmentEndpoint {
    public let simulator: DepartmentSimulator<Model>
    public private(set) var state: DepartmentState<Model.Books>

    public init(_ simulator: DepartmentSimulator<Model>) {
        self.simulator = simulator
        state = simulator.initialState
    }

    public var agency: Agency { Model.agency }
    public var ledger: [LedgerEffect] { state.ledger }

    /// Changes the department's records outside any request, as its own staff would (a tax
    /// assessment leaving arrears, money paid into an account): for scenarios and tests.
    public mutating func amendBooks(_ change: (inout Model.Books) -> Void) { change(&state.books) }

    public mutating func receive(_ request: Data, at now: Date) -> Handling {
        let (next, handling) = simulator.handle(state, request: request, now: now)
        state = next
        return handling
    }

    public func snapshot() throws -> Data { try NativeJSON.encoder.encode(state) }

    public mutating func restore(_ snapshot: Data) throws {
        state = try NativeJSON.decoder.decode(DepartmentState<Model.Books>.self, from: snapshot)
    }
}

/// Any of the five built-in departments by agency, with its state empty: what a department
/// service builds from its configuration without naming the model types. Nil for an agency
/// without a Swift model (`Agency.isBuiltIn` false): that one runs the configurable simulator.
public func makeDepartment(_ agency: Agency, reference: ReferenceData, preset: DepartmentProfile.Preset, seed: UInt64,
                           reservationDays: Int = 60) -> (any DepartmentEndpoint)? {
    func running<M: DepartmentModel>(_ model: M) -> any DepartmentEndpoint {
        RunningDepartment(DepartmentSimulator(model: model, preset: preset, seed: seed))
    }
    return switch agency {
    case .businessRegistration: running(BusinessRegistration(reference: reference, reservationDays: reservationDays))
    case .sealEngraving: running(SealEngraving())
    case .tax: running(Tax(reference: reference))
    case .socialSecurity: running(SocialSecurity(reference: reference))
    case .bank: running(Bank())
    default: nil
    }
}

/// JSON as departments speak it here: sorted keys (so replies are byte-for-byte reproducible),
/// unescaped slashes, UTF-8.
public enum NativeJSON {
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .secondsSince1970
        return e
    }()

    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .secondsSince1970
        return d
    }()

    public static func encode(_ value: some Encodable) -> Data {
        // Encoding plain structs of strings, numbers and arrays cannot fail.
        try! encoder.encode(value)
    }

    /// A fingerprint of the request's content that ignores key order and whitespace.
    public static func fingerprint(_ data: Data) -> UInt64 {
        let canonical: Data
        if let object = try? JSONSerialization.jsonObject(with: data),
           let sorted = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            canonical = sorted
        } else {
            canonical = data
        }
        return StableRandom.hash(String(decoding: canonical, as: UTF8.self), seed: 0)
    }

    /// The native field path at fault (`fddbr.zjhm`, `SEALS[2]`) and a reason for a decoding error.
    static func describe(_ error: Error) -> (field: String?, reason: String) {
        func path(_ keys: [CodingKey]) -> String? {
            var out = ""
            for k in keys {
                if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
            }
            return out.isEmpty ? nil : out
        }
        switch error as? DecodingError {
        case let .keyNotFound(key, ctx)?: return (path(ctx.codingPath + [key]), "missing field")
        case let .typeMismatch(_, ctx)?, let .valueNotFound(_, ctx)?: return (path(ctx.codingPath), "wrong type or null")
        case let .dataCorrupted(ctx)?: return (path(ctx.codingPath), "not valid JSON")
        default: return (nil, "\(error)")
        }
    }
}

/// Date formats departments put in replies, in China Standard Time (UTC+8, no daylight saving).
enum CST {
    static let calendar: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(secondsFromGMT: 8 * 3600)!
        return c
    }()

    /// `yyyy-MM-dd`, or `yyyyMMdd` when `separator` is empty.
    static func day(_ date: Date, separator: String = "-") -> String {
        let p = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d%@%02d%@%02d", p.year!, separator, p.month!, separator, p.day!)
    }

    static func year(_ date: Date) -> Int { calendar.component(.year, from: date) }

    static func addingDays(_ days: Int, to date: Date) -> Date {
        calendar.date(byAdding: .day, value: days, to: date)!
    }

    static func addingYears(_ years: Int, to date: Date) -> Date {
        calendar.date(byAdding: .year, value: years, to: date)!
    }
}
