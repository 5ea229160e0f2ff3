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

    public var sagaId: String
    public var status: SagaStatus
    public var paused: Bool
    public var headline: String
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
                prefix: String, lag: (String) -> (group: String, lag: Int64?, note: String?)) {
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
            }
            return entry
        }
        timers = state.armedTimers(bundle: bundle).map { timer in
            PendingTimer(id: timer.id, due: timer.due, inWorking: .until(timer.due, from: t.now, on: calendar))
        }.sorted { ($0.due, $0.id) < ($1.due, $1.id) }
        actions = Self.actions(t, state: state)
        headline = Self.headline(t, blocking: blocking)
    }

    static func headline(_ t: SagaTimeline, blocking: [Blocking]) -> String {
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
        let stuck = ["operator", "applicant", "nobody"].contains(first.turn) || t.slaBreached ? "Stuck" : "Waiting"
        return "\(stuck) at \(at)\(first.reason) — \(whose); \(sla)."
    }

    /// Exact commands, for the blockers' states (the engine accepts them in exactly these states).
    static func actions(_ t: SagaTimeline, state: SagaState) -> [Action] {
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
                out.append(Action(why: "run \(s) again (optionally with corrected input)", command: "yishi sagas retry \(id) --step \(s) [--set FIELD=JSON]"))
                out.append(Action(why: "finished at the counter: record its outputs", command: "yishi sagas resolve \(id) --step \(s) --note \"…\" [--output NAME=JSON]"))
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
