import Foundation
import Orchestrator
import SagaEngine

/// One answer to "why is this saga stuck": the blocking steps and whose turn each is (agency with
/// its topic, consumer group and lag; the operator queue; the applicant; a hub timer), the last
/// attempt and its error, the timers pending, the SLA left, and the exact commands that would
/// unblock it.
public struct Diagnosis: Encodable {
    public struct Blocking: Encodable {
        public var blocker: SagaTimeline.Blocker
        public var title: String?
        /// Where the request waits when it is the agency's turn.
        public var topic: String?
        public var consumerGroup: String?
        /// The group's lag on the saga's partition of `topic` (nil when not measured).
        public var lag: Int64?
        public var lagNote: String?
        public var lastAttempt: SagaTimeline.Attempt?
        public var lastError: String?
        /// The consumer groups between the hub and the agency (its adapter, its department
        /// gateway) with their live members and the records waiting on the saga's partition.
        public var groups: [GroupWatch]?
        /// Set when work piles up in front of a process that is not there: records wait and the
        /// group has no live member. Names the department (or adapter).
        public var pileUp: String?
    }

    /// A consumer group on the way to an agency, as `yishi status` sees it.
    public struct GroupWatch: Encodable, Equatable, Sendable {
        /// `adapter` or `department`.
        public var role: String
        public var agency: String
        public var group: String
        /// The topic (full name) the group consumes toward the agency.
        public var topic: String
        /// Live members by the group coordinator; nil when not known.
        public var members: Int?
        /// Records waiting on the saga's partition of `topic`; nil when not measured.
        public var lag: Int64?
        /// Wall seconds the oldest of them has waited (from its timestamp); nil when none waits.
        public var waitedSeconds: Int64?
        /// Records waiting this long (wall seconds) with members registered: work piling up.
        public var pileUpSeconds: Int64
        public init(role: String, agency: String, group: String, topic: String, members: Int?, lag: Int64?, waitedSeconds: Int64? = nil,
                    pileUpSeconds: Int64 = 10) {
            self.role = role; self.agency = agency; self.group = group; self.topic = topic; self.members = members; self.lag = lag
            self.waitedSeconds = waitedSeconds; self.pileUpSeconds = pileUpSeconds
        }

        /// "work piles up in front of the tax department's system: …", or nil. Said when records
        /// wait and the group has no live member, or when they have waited `pileUpSeconds` (a
        /// killed member can stay registered on a broker that does not expire sessions, as Tansu 0.6.0).
        public var pileUp: String? {
            guard let lag, lag > 0 else { return nil }
            let who = role == "department" ? "the \(agency) department's system (or its gateway)" : "the \(agency) adapter"
            if members == 0 {
                return "work piles up in front of \(who): \(lag) record(s) wait on \(topic) and its consumer group \(group) has no live member — start it"
            }
            guard let waitedSeconds, waitedSeconds >= pileUpSeconds else { return nil }
            return "work piles up in front of \(who): \(lag) record(s) have waited \(waitedSeconds) s on \(topic) and its consumer group \(group) "
                + "does not consume them (\(members.map { "\($0) member(s) registered" } ?? "members unknown"), none consuming) — is it running?"
        }
    }

    public struct PendingTimer: Encodable, Equatable {
        public var id: String
        public var due: Instant
        /// Working time until it fires (negative: overdue, fires on the orchestrator's next pass).
        public var inWorking: WorkingTime
    }

    public struct Action: Encodable, Equatable {
        public var why: String
        public var command: String
    }

    /// Why a finished saga did not complete, and what the applicant can do.
    public struct Failure: Encodable, Equatable {
        public var step: String?
        public var title: String?
        public var agency: String?
        /// The agency's (or the hub's) code, e.g. `INVALID_REQUEST`, `TIMEOUT`.
        public var code: String?
        /// The agency's reason as the audit trail has it (masked like every detail).
        public var reason: String?
        /// `rejected` (a business refusal), `failed` (technical, retries used up), `cancelled`.
        public var kind: String
        public var applicantCan: String
    }

    public var sagaId: String
    public var status: SagaStatus
    public var paused: Bool
    public var headline: String
    /// Set for a failed, compensated or cancelled saga.
    public var failure: Failure?
    public var slaLeft: WorkingTime
    public var deadline: Instant
    public var slaAtRisk: Bool
    public var slaBreached: Bool
    public var partition: Int32
    public var blocking: [Blocking]
    public var timers: [PendingTimer]
    public var actions: [Action]
    public var source: String

    /// `lag(agency)` measures the agency's adapter group on the saga's partition of its commands
    /// topic; nil when it could not be measured.
    public init(timeline t: SagaTimeline, state: SagaState, bundle: CompiledBundle, calendar: BusinessCalendar, partition: Int32,
                prefix: String, lag: (String) -> (group: String, lag: Int64?, note: String?),
                groups watch: (String) -> [GroupWatch] = { _ in [] }, catalogues: CatalogueSet? = nil) {
        sagaId = t.sagaId
        status = t.status
        paused = t.paused
        slaLeft = t.slaLeft
        deadline = t.deadline
        slaAtRisk = t.slaAtRisk
        slaBreached = t.slaBreached
        self.partition = partition
        source = t.source
        blocking = t.blockers.map { b in
            let step = b.step.flatMap { id in t.steps.first { $0.id == id } }
            var entry = Blocking(blocker: b, title: step?.title, lastAttempt: step?.attempts.last, lastError: step?.lastError)
            if b.turn == "agency", let agency = b.agency {
                let measured = lag(agency)
                entry.topic = prefix + "commands." + agency
                entry.consumerGroup = measured.group
                entry.lag = measured.lag
                entry.lagNote = measured.note
                let watched = watch(agency)
                entry.groups = watched.isEmpty ? nil : watched
                entry.pileUp = watched.compactMap(\.pileUp).first
            }
            return entry
        }
        timers = state.armedTimers(bundle: bundle).map { timer in
            PendingTimer(id: timer.id, due: timer.due, inWorking: .until(timer.due, from: t.now, on: calendar))
        }.sorted { ($0.due, $0.id) < ($1.due, $1.id) }
        actions = Self.actions(t, state: state, bundle: bundle, catalogues: catalogues)
        failure = Self.failure(t)
        headline = Self.headline(t, blocking: blocking, failure: failure)
    }

    /// For a finished saga that did not complete: the step that failed (the failed step, else the
    /// last step whose last attempt did not succeed), its code and reason, and the applicant's way on.
    static func failure(_ t: SagaTimeline) -> Failure? {
        guard t.status.isFinal, t.status != .completed else { return nil }
        if t.status == .cancelled {
            let cancel = t.operatorActions.last { $0.kind == AuditEvent.Kind.cancelRequested.rawValue }
            return Failure(step: nil, title: nil, agency: nil, code: nil,
                           reason: "cancelled" + (cancel.map { " by \($0.by)" } ?? "") + (cancel?.detail.map { ": \($0)" } ?? ""), kind: "cancelled",
                           applicantCan: "ask the office that cancelled it why; a new application can be submitted once the reason is settled")
        }
        let step = t.steps.first { $0.status == .failed }
            ?? t.steps.last { s in s.lastError != nil && s.attempts.last.map { $0.outcome != "succeeded" } ?? true }
        let attempt = step?.attempts.last { $0.outcome != "succeeded" && $0.outcome != "running" }
        let rejected = attempt?.outcome == "rejected"
        let code = step?.lastError ?? attempt?.detail.flatMap { $0.split(separator: ":").first.map(String.init) }
        let undone = t.status == .compensated ? " Every step that had completed was undone (compensated)." : ""
        let can = rejected
            ? "the agency refused the application: the applicant can correct what it names and submit a new application, or be helped at the 办不成事 window.\(undone)"
            : "the agency could not finish it (technical failure, retries used up); nothing the applicant gave was refused: they can submit again, or be helped at the 办不成事 window.\(undone)"
        return Failure(step: step?.id, title: step?.title, agency: step?.agency, code: code, reason: attempt?.detail,
                       kind: rejected ? "rejected" : "failed", applicantCan: can)
    }

    static func headline(_ t: SagaTimeline, blocking: [Blocking], failure: Failure? = nil) -> String {
        if let f = failure {
            if f.kind == "cancelled" { return "Finished: the saga was \(f.reason ?? "cancelled"). The applicant can: \(f.applicantCan)." }
            let at = f.step.map { " at \($0)" + (f.title.map { " (\($0))" } ?? "") + (f.agency.map { ", \($0)" } ?? "") } ?? ""
            let why = f.reason ?? f.code ?? "no reason recorded"
            return "Finished: the saga \(t.status == .compensated ? "was compensated after it failed" : "failed")\(at) — \(f.kind == "rejected" ? "rejected" : "failed"): \(why). "
                + "The applicant can: \(f.applicantCan)"
        }
        if t.status.isFinal { return "Not stuck: the saga is \(t.status.rawValue)." }
        let sla = t.slaLeft.ms >= 0 ? "SLA left \(t.slaLeft) working time" : "overdue by \(WorkingTime(ms: -t.slaLeft.ms)) working time"
        guard let first = blocking.first?.blocker else {
            return "Not stuck: no step is out or failed (status \(t.status.rawValue)); \(sla)."
        }
        let whose: String
        switch first.turn {
        case "operator": whose = "the operator's turn (办不成事 queue)"
        case "agency": whose = "the agency's turn (\(first.agency ?? "?"))"
        case "applicant": whose = "the applicant's turn (supplement)"
        case "hub": whose = "the hub's turn (a retry timer or a notice period)"
        default: whose = "nobody's turn"
        }
        let at = first.step.map { "\($0): " } ?? ""
        if let pile = blocking.compactMap(\.pileUp).first {
            return "Stuck at \(at)\(first.reason) — \(pile); \(sla)."
        }
        let stuck = ["operator", "applicant", "nobody"].contains(first.turn) || t.slaBreached ? "Stuck" : "Waiting"
        return "\(stuck) at \(at)\(first.reason) — \(whose); \(sla)."
    }

    /// Exact commands, for the blockers' states (the engine accepts them in exactly these states).
    /// With `catalogues`, the retry and resolve actions list the names `--set` and `--output` accept.
    static func actions(_ t: SagaTimeline, state: SagaState, bundle: CompiledBundle? = nil, catalogues: CatalogueSet? = nil) -> [Action] {
        guard !t.status.isFinal else { return [] }
        let id = t.sagaId
        var out: [Action] = []
        if t.paused { out.append(Action(why: "resume dispatching", command: "yishi sagas resume \(id)")) }
        let forward = t.status == .running || t.status == .manual
        for (i, step) in t.steps.enumerated() where i < state.steps.count {
            let s = step.id
            if state.steps[i].isPaused, !state.steps[i].status.isDone {
                out.append(Action(why: "release \(s)", command: "yishi sagas resume \(id) --step \(s)"))
            }
            switch state.steps[i].status {
            case .failed where forward:
                let fields = bundle.flatMap { b in catalogues.flatMap { OperatorInputCheck.payloadFields(step: s, bundle: b, catalogues: $0) } }
                let outputs = bundle.flatMap { b in catalogues.flatMap { OperatorInputCheck.outputs(step: s, bundle: b, catalogues: $0) } }
                out.append(Action(why: "run \(s) again (optionally with corrected input)" + (fields.map { "; --set FIELD: \($0.joined(separator: ", "))" } ?? ""),
                                  command: "yishi sagas retry \(id) --step \(s) [--set FIELD=JSON]"))
                out.append(Action(why: "finished at the counter: record its outputs" + (outputs.map { "; --output NAME: \($0.isEmpty ? "none" : $0.joined(separator: ", "))" } ?? ""),
                                  command: "yishi sagas resolve \(id) --step \(s) --note \"…\" [--output NAME=JSON]"))
                out.append(Action(why: "go on without \(s)", command: "yishi sagas skip \(id) --step \(s) --reason \"…\""))
            case .backoff where forward:
                out.append(Action(why: "retry \(s) now instead of at \(LocalTime.full(state.steps[i].due))", command: "yishi sagas retry \(id) --step \(s)"))
            case .waitingSupplement where forward:
                let materials = state.steps[i].missing.map { "--material \($0)=…" }.joined(separator: " ")
                out.append(Action(why: "the applicant's materials arrived", command: "yishi sagas supplement \(id) --step \(s) --attempt \(state.steps[i].attempt) \(materials)"))
                out.append(Action(why: "go on without \(s)", command: "yishi sagas skip \(id) --step \(s) --reason \"…\""))
            case .running where forward && !state.steps[i].isPaused:
                out.append(Action(why: "no new attempt of \(s) while \(step.agency) is investigated", command: "yishi sagas pause \(id) --step \(s) --reason \"…\""))
            case .compensationFailed:
                out.append(Action(why: "try undoing \(s) again", command: "yishi sagas retry \(id) --step \(s)"))
                out.append(Action(why: "undone by hand", command: "yishi sagas resolve \(id) --step \(s) --note \"…\""))
            default: break
            }
        }
        if forward { out.append(Action(why: "give up: undo what completed", command: "yishi sagas cancel \(id) --reason \"…\"")) }
        var seen = Set<String>()
        return out.filter { seen.insert($0.command).inserted }
    }
}
