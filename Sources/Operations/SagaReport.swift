import Foundation
import Messaging
import Orchestrator
import SagaEngine

/// Working time as the operators read it: `2h05m` (on the bundle's business calendar).
public struct WorkingTime: Encodable, Equatable, Sendable, CustomStringConvertible {
    public var ms: Int64
    public init(ms: Int64) { self.ms = ms }
    public var hours: Double { Double(ms) / 3_600_000 }
    public var description: String {
        let minutes = abs(ms) / 60_000, sign = ms < 0 ? "-" : ""
        if minutes == 0 { return sign + "\(abs(ms) / 1000)s" }
        if minutes < 60 { return sign + "\(minutes)m" }
        return sign + "\(minutes / 60)h" + String(format: "%02dm", minutes % 60)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode((hours * 100).rounded() / 100)
    }

    /// Working time from `now` until `due`; negative once `due` has passed.
    public static func until(_ due: Instant, from now: Instant, on calendar: BusinessCalendar) -> WorkingTime {
        WorkingTime(ms: now < due ? calendar.workingTime(from: now, to: due) : -calendar.workingTime(from: due, to: now))
    }
}

/// Everything `sagas show` says about one saga: its steps with every attempt, durations in
/// working time, the current blocker and the SLA left. Built from a state, its bundle and its
/// audit trail; `now` is an input, so the same inputs always render the same text.
public struct SagaTimeline: Encodable {
    public struct Attempt: Encodable, Equatable {
        public var number: Int
        public var dispatchedAt: Instant
        public var endedAt: Instant?
        /// `succeeded`, `failed`, `rejected`, `timedOut`, `supplementRequested`, or `running`.
        public var outcome: String
        public var detail: String?
        public var working: WorkingTime
    }

    public struct Step: Encodable {
        public var id: String
        public var title: String?
        public var agency: String
        public var action: String
        public var after: [String]
        public var status: StepStatus
        public var attempt: Int
        public var revision: Int
        public var lastError: String?
        /// Held by an operator (`sagas pause --step`): not dispatched until released.
        public var held: Bool
        public var attempts: [Attempt]
        /// Working time of all attempts together.
        public var working: WorkingTime
    }

    public struct OperatorAction: Encodable, Equatable {
        public var at: Instant
        public var by: String
        public var kind: String
        public var step: String?
        public var detail: String?
    }

    /// What holds the saga up now, and whose turn it is.
    public struct Blocker: Encodable, Equatable {
        public var step: String?
        public var agency: String?
        public var status: String
        /// `agency`, `operator` (办不成事 window), `applicant` (容缺 supplement), `hub` (a retry timer, or a wait step's notice period), `nobody`.
        public var turn: String
        public var since: Instant?
        public var reason: String
    }

    public var sagaId: String
    public var bundle: String
    public var bundleVersion: Int
    public var title: String
    public var status: SagaStatus
    public var paused: Bool
    public var submittedAt: Instant
    public var atRiskAt: Instant
    public var deadline: Instant
    public var slaAtRisk: Bool
    public var slaBreached: Bool
    /// Working time to the deadline; negative once overdue.
    public var slaLeft: WorkingTime
    public var elapsed: WorkingTime
    public var steps: [Step]
    public var blockers: [Blocker]
    public var manualCases: [ManualCase]
    public var operatorActions: [OperatorAction]
    /// Form values the saga keeps, by path (personal data masked unless revealed).
    public var inputs: [String: JSONValue]
    public var auditEvents: Int
    /// What the calendar does not know about this saga's deadlines (years not covered, or
    /// provisional), from the state's flags and its SLA window; nil when nothing.
    public var calendarWarning: String?
    /// Set when the loaded bundle version is not the definition the saga started on (edited in
    /// place: its steps, matched by position, may be shown wrongly); nil when it is or unknown.
    public var definitionWarning: String?
    public var now: Instant
    /// `live` (the orchestrator) or `changelog`.
    public var source: String

    public init(state: SagaState, bundle: CompiledBundle, calendar: BusinessCalendar, audit: [AuditEvent], now: Instant,
                source: String, revealPII: Bool = false) {
        sagaId = state.sagaId
        self.bundle = state.bundleId
        bundleVersion = state.bundleVersion
        title = bundle.definition.title
        status = state.status
        paused = state.paused
        submittedAt = state.submittedAt
        atRiskAt = state.atRiskAt
        deadline = state.deadline
        slaAtRisk = state.slaAtRisk
        slaBreached = state.slaBreached
        slaLeft = .until(state.deadline, from: now, on: calendar)
        let end = state.status.isFinal ? (audit.last(where: { $0.kind == .sagaFinished })?.at ?? now) : now
        elapsed = WorkingTime(ms: calendar.workingTime(from: state.submittedAt, to: end))
        self.now = now
        self.source = source
        auditEvents = audit.count
        var gaps = calendar.gaps(from: state.submittedAt, to: state.deadline)
        gaps.uncovered = Array(Set(gaps.uncovered).union(state.calendarNotCovered ?? [])).sorted()
        gaps.provisional = Array(Set(gaps.provisional).union(state.calendarProvisional ?? [])).sorted()
        calendarWarning = state.status == .new ? nil : calendar.describe(gaps)
        if let started = state.definitionFingerprint, started != bundle.fingerprint {
            definitionWarning = "\(bundle.id) v\(bundle.version) in \(bundle.file ?? "the bundle directory") is not the definition this saga "
                + "started on (fingerprint \(bundle.fingerprint.prefix(12)) now, \(started.prefix(12)) in the saga): edited in place; "
                + "steps below are matched by position and may be wrong"
        }

        // Agencies' reasons and operators' notes are free text: mask what looks personal in them.
        let text: (String) -> String = { revealPII ? $0 : PersonalData.maskText($0) }
        manualCases = state.manualCases.map { c in var c = c; c.reason = text(c.reason); return c }
        var attempts = Self.attempts(audit, calendar: calendar, now: now)
        for key in attempts.keys { for i in attempts[key]!.indices { attempts[key]![i].detail = attempts[key]![i].detail.map(text) } }
        steps = bundle.steps.enumerated().map { i, s in
            let st: StepState? = i < state.steps.count ? state.steps[i] : nil
            let tries = attempts[s.id] ?? []
            return Step(id: s.id, title: bundle.definition.steps[i].title, agency: s.agency, action: s.action,
                        after: s.predecessors.map { bundle.steps[$0].id }, status: st?.status ?? .pending, attempt: Int(st?.attempt ?? 0),
                        revision: Int(st?.revision ?? 0), lastError: st?.lastError,
                        held: st.map { $0.isPaused && !$0.status.isDone } ?? false, attempts: tries,
                        working: WorkingTime(ms: tries.reduce(0) { $0 + $1.working.ms }))
        }
        operatorActions = audit.compactMap { e in
            e.by.map { OperatorAction(at: e.at, by: $0, kind: e.kind.rawValue, step: e.step, detail: e.detail.map(text)) }
        }
        var inputs: [String: JSONValue] = [:]
        for (i, ref) in bundle.external.enumerated() where i < state.external.count {
            guard case .form(let path) = ref else { continue }
            let keys = path.map { c -> String in if case .key(let k) = c { return k }; if case .index(let n) = c { return "[\(n)]" }; return "" }
            let value = state.external[i]
            inputs["$." + keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")] =
                revealPII ? value : PersonalData.mask(value, atPath: keys.filter { !$0.hasPrefix("[") })
        }
        self.inputs = inputs
        blockers = Self.blockers(state: state, bundle: bundle, steps: steps, audit: audit).map { b in
            var b = b
            b.reason = text(b.reason)
            return b
        }
    }

    /// Attempts per step from the audit trail: a dispatch opens one, the answer (or timeout) closes it.
    static func attempts(_ audit: [AuditEvent], calendar: BusinessCalendar, now: Instant) -> [String: [Attempt]] {
        var out: [String: [Attempt]] = [:]
        for e in audit {
            guard let step = e.step, let number = e.attempt else { continue }
            let outcome: String
            switch e.kind {
            case .stepDispatched:
                out[step, default: []].append(Attempt(number: number, dispatchedAt: e.at, endedAt: nil, outcome: "running", detail: nil,
                                                      working: WorkingTime(ms: calendar.workingTime(from: e.at, to: now))))
                continue
            case .stepSucceeded: outcome = "succeeded"
            case .stepFailed: outcome = "failed"
            case .stepRejected: outcome = "rejected"
            case .stepTimedOut: outcome = "timedOut"
            case .supplementRequested: outcome = "supplementRequested"
            default: continue
            }
            guard let i = out[step]?.lastIndex(where: { $0.number == number && $0.endedAt == nil }) else { continue }
            out[step]![i].endedAt = e.at
            out[step]![i].outcome = outcome
            out[step]![i].detail = e.detail
            out[step]![i].working = WorkingTime(ms: calendar.workingTime(from: out[step]![i].dispatchedAt, to: e.at))
        }
        return out
    }

    static func blockers(state: SagaState, bundle: CompiledBundle, steps: [Step], audit: [AuditEvent]) -> [Blocker] {
        guard !state.status.isFinal else { return [] }
        var out: [Blocker] = []
        if state.paused {
            let p = audit.last { $0.kind == .paused }
            out.append(Blocker(step: nil, agency: nil, status: "paused", turn: "operator", since: p?.at,
                               reason: "paused" + (p?.by.map { " by \($0)" } ?? "") + (p?.detail.map { ": \($0)" } ?? "")))
        }
        for c in state.manualCases {
            let agency = bundle.stepIndex(of: c.step).map { bundle.steps[$0].agency }
            out.append(Blocker(step: c.step, agency: agency, status: c.kind == .forward ? "failed" : "compensationFailed", turn: "operator",
                               since: c.openedAt, reason: "办不成事 case open: " + (c.code.map { "\($0): " } ?? "") + c.reason))
        }
        for i in state.blockingSteps where i < steps.count {  // a state with more steps than its bundle: show what matches
            let s = steps[i], st = state.steps[i]
            if state.manualCases.contains(where: { $0.step == s.id }) { continue }
            let since = s.attempts.last?.dispatchedAt
            switch st.status {
            case .running where bundle.steps[i].isWait:
                // A public notice: nobody is asked; the hub's timer ends it (an objection would open a case).
                out.append(Blocker(step: s.id, agency: nil, status: "running", turn: "hub", since: audit.last { $0.kind == .waitStarted && $0.step == s.id }?.at,
                                   reason: "notice period runs until \(LocalTime.full(st.due)); objections open a 办不成事 case"))
            case .running:
                out.append(Blocker(step: s.id, agency: s.agency, status: "running", turn: "agency", since: since,
                                   reason: "attempt \(st.attempt) out at \(s.agency); timeout at \(LocalTime.full(st.due))"))
            case .backoff:
                out.append(Blocker(step: s.id, agency: s.agency, status: "backoff", turn: "hub", since: s.attempts.last?.endedAt,
                                   reason: "attempt \(st.attempt) failed (\(st.lastError ?? "?")); retry due at \(LocalTime.full(st.due))"))
            case .waitingSupplement:
                out.append(Blocker(step: s.id, agency: s.agency, status: "waitingSupplement", turn: "applicant", since: s.attempts.last?.endedAt,
                                   reason: "容缺: waiting for " + st.missing.joined(separator: ", ")))
            case .compensating, .compensationBackoff:
                out.append(Blocker(step: s.id, agency: s.agency, status: st.status.rawValue, turn: st.status == .compensating ? "agency" : "hub",
                                   since: nil, reason: "undoing \(s.id) (compensation attempt \(st.compensationAttempt))"
                                       + (st.isUnconfirmed ? "; its outcome was unknown (timed out), so it is undone in case it acted" : "")))
            case .failed:
                out.append(Blocker(step: s.id, agency: s.agency, status: "failed", turn: "nobody", since: s.attempts.last?.endedAt,
                                   reason: "failed: \(st.lastError ?? "?")"))
            case .pending where st.isPaused:
                let p = audit.last { $0.kind == .paused && $0.step == s.id }
                out.append(Blocker(step: s.id, agency: s.agency, status: "paused", turn: "operator", since: p?.at,
                                   reason: "held" + (p?.by.map { " by \($0)" } ?? "") + (p?.detail.map { ": \($0)" } ?? "")))
            default: break
            }
        }
        return out
    }
}
