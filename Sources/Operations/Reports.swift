import Foundation
import Messaging
import Orchestrator
import SagaEngine

/// Times as operators read them: local time of the hub's calendar (UTC+8), `2026-03-02 09:15:00`.
public enum LocalTime {
    public static func full(_ i: Instant, offsetMinutes: Int = 480) -> String {
        let text = i.rfc3339(offsetMinutes: offsetMinutes)
        return String(text.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }

    /// `03-02 09:15`.
    public static func short(_ i: Instant, offsetMinutes: Int = 480) -> String {
        let f = full(i, offsetMinutes: offsetMinutes)
        return String(f.dropFirst(5).prefix(11))
    }
}

extension SagaStatus {
    var colour: Style.Colour? {
        switch self {
        case .completed: .green
        case .manual, .failed, .compensated: .red
        case .compensating, .cancelled: .yellow
        default: nil
        }
    }
}

/// One row of `sagas list` (and the `--json` shape).
public struct SagaSummary: Encodable {
    public var sagaId: String
    public var bundle: String
    public var bundleVersion: Int
    public var status: SagaStatus
    public var paused: Bool
    public var slaAtRisk: Bool
    public var slaBreached: Bool
    public var submittedAt: Instant
    public var deadline: Instant
    public var slaLeft: WorkingTime?
    /// Steps holding the saga up, as `step (status)`.
    public var blockedAt: [String]
    public var openCases: Int
    /// A failed or compensated saga: the step that failed and its code (`failed at S: CODE`); nil otherwise.
    public var reason: String?
    public var region: String?
    /// The legal representative's name (masked unless revealed).
    public var applicant: String?

    public init(_ s: SagaState, bundle: CompiledBundle?, calendar: BusinessCalendar?, now: Instant, revealPII: Bool) {
        sagaId = s.sagaId
        self.bundle = s.bundleId
        bundleVersion = s.bundleVersion
        status = s.status
        paused = s.paused
        slaAtRisk = s.slaAtRisk
        slaBreached = s.slaBreached
        submittedAt = s.submittedAt
        deadline = s.deadline
        if let calendar, !s.status.isFinal { slaLeft = .until(s.deadline, from: now, on: calendar) }
        blockedAt = bundle.map { b in s.blockingSteps.filter { $0 < b.steps.count }.map { i in
            let st = s.steps[i]
            return "\(b.steps[i].id) (\(st.isPaused && !st.status.isDone ? (st.status == .pending ? "held" : "\(st.status.rawValue), held") : st.status.rawValue))"
        } } ?? []
        openCases = s.manualCases.count
        if s.status == .failed || s.status == .compensated, let bundle {
            let i = s.steps.firstIndex { $0.status == .failed } ?? s.steps.lastIndex { $0.lastError != nil && !$0.status.isDone }
                ?? s.steps.lastIndex { $0.lastError != nil }
            if let i, i < bundle.steps.count { reason = "failed at \(bundle.steps[i].id): \(s.steps[i].lastError ?? "?")" }
        }
        region = bundle.flatMap { s.region(bundle: $0) }
        if let bundle, let i = bundle.external.firstIndex(of: .form([.key("legalRepresentative"), .key("name")])), i < s.external.count,
           let name = s.external[i].stringValue {
            applicant = revealPII ? name : PersonalData.maskName(name)
        }
    }
}

public enum Render {
    public static func sagaList(_ rows: [SagaSummary], next: SagaCursor?, style: Style) -> String {
        var table = Table(["SAGA", "BUNDLE", "STATUS", "SUBMITTED", "SLA LEFT", "BLOCKED AT", "REGION", "APPLICANT"], shrinkable: 5)
        for r in rows {
            var status = r.status.rawValue
            if r.paused { status += " ⏸" }
            let risk: Style.Colour? = r.slaBreached ? .red : (r.slaAtRisk ? .yellow : nil)
            table.add([Cell(r.sagaId), Cell(r.bundle + (r.bundleVersion == 1 ? "" : " v\(r.bundleVersion)")), Cell(status, r.status.colour),
                       Cell(LocalTime.short(r.submittedAt)),
                       Cell(r.slaLeft.map { $0.ms < 0 ? "overdue \(WorkingTime(ms: -$0.ms))" : $0.description } ?? "-", risk),
                       Cell(r.blockedAt.isEmpty ? (r.reason ?? "-") : r.blockedAt.joined(separator: ", "), r.reason != nil ? .red : nil),
                       Cell(r.region ?? "-"), Cell(r.applicant ?? "-")])
        }
        var out = table.render(style) + "\n\(rows.count) saga(s); times UTC+8"
        if let next { out += "; more: --after \(next)" }
        return out
    }

    public static func timeline(_ t: SagaTimeline, style: Style) -> String {
        var out: [String] = []
        out.append(style.paint("Saga \(t.sagaId)", .bold) + " · \(t.bundle) v\(t.bundleVersion) \(t.title)")
        var status = style.paint(t.status.rawValue, t.status.colour)
        if t.paused { status += " (paused)" }
        if !t.manualCases.isEmpty { status += " · \(t.manualCases.count) 办不成事 case(s) open" }
        out.append("Status     \(status)")
        out.append("Submitted  \(LocalTime.full(t.submittedAt)) · elapsed \(t.elapsed) working time")
        let left = t.slaLeft.ms >= 0 ? "\(t.slaLeft) left" : "overdue by \(WorkingTime(ms: -t.slaLeft.ms))"
        let flag = t.slaBreached ? style.paint(" (breached)", .red) : (t.slaAtRisk ? style.paint(" (at risk)", .yellow) : "")
        out.append("SLA        deadline \(LocalTime.full(t.deadline)) · \(t.status.isFinal ? "finished" : left)\(flag) · at risk from \(LocalTime.full(t.atRiskAt))")
        if let warning = t.calendarWarning { out.append("Calendar   " + style.paint(warning, .yellow)) }
        if let warning = t.definitionWarning { out.append("Definition " + style.paint(warning, .red)) }
        if t.blockers.isEmpty {
            out.append("Blocker    none")
        } else {
            for (n, b) in t.blockers.enumerated() {
                let since = b.since.map { " since \(LocalTime.full($0))" } ?? ""
                out.append((n == 0 ? "Blocker    " : "           ") + style.paint("\(b.step.map { "\($0): " } ?? "")\(b.reason)", .red)
                           + " — \(b.turn)'s turn\(since)")
            }
        }
        out.append("")
        var steps = Table(["STEP", "AGENCY", "STATUS", "TRIES", "WORKING", "AFTER", "LAST ERROR"])
        for s in t.steps {
            let colour: Style.Colour? = s.status == .succeeded ? .green : (s.status == .failed || s.status == .compensationFailed ? .red
                : (s.status == .running || s.status == .backoff || s.status == .waitingSupplement ? .yellow : nil))
            // A held step is `pending` to the engine, but what the operator needs to see is that it is held.
            let status = s.held ? (s.status == .pending ? "held" : "\(s.status.rawValue) (held)") : s.status.rawValue
            steps.add([Cell(s.id), Cell(s.agency), Cell(status, s.held ? .yellow : colour), Cell(String(s.attempt)),
                       Cell(s.attempts.isEmpty ? "-" : s.working.description), Cell(s.after.isEmpty ? "-" : s.after.joined(separator: ", ")),
                       Cell(s.lastError ?? "")])
        }
        out.append(steps.render(style))
        let attempts = t.steps.flatMap { s in s.attempts.map { (s.id, $0) } }.sorted { ($0.1.dispatchedAt, $0.0) < ($1.1.dispatchedAt, $1.0) }
        out.append("")
        if attempts.isEmpty {
            out.append("Attempts: none in the audit trail (\(t.auditEvents) event(s) read)")
        } else {
            var table = Table(["ATTEMPT", "DISPATCHED", "ENDED", "WORKING", "OUTCOME", "DETAIL"])
            for (step, a) in attempts {
                table.add([Cell("\(step) #\(a.number)"), Cell(LocalTime.full(a.dispatchedAt)), Cell(a.endedAt.map { LocalTime.full($0) } ?? "-"),
                           Cell(a.working.description), Cell(a.outcome, a.outcome == "succeeded" ? .green : (a.outcome == "running" ? .yellow : .red)),
                           Cell(a.detail.map(PersonalData.maskText) ?? "")])
            }
            out.append(table.render(style))
        }
        if !t.operatorActions.isEmpty {
            out.append("")
            var table = Table(["OPERATOR ACTION", "AT", "BY", "STEP", "DETAIL"])
            for a in t.operatorActions {
                table.add([Cell(a.kind), Cell(LocalTime.full(a.at)), Cell(a.by), Cell(a.step ?? "-"), Cell(a.detail.map(PersonalData.maskText) ?? "")])
            }
            out.append(table.render(style))
        }
        out.append("")
        out.append(style.paint("\(t.auditEvents) audit event(s); times UTC+8; durations in working time on the bundle's calendar; source: \(t.source)", .dim))
        return out.joined(separator: "\n")
    }

    public static func diagnosis(_ d: Diagnosis, style: Style) -> String {
        var out = [style.paint(d.headline, d.failure != nil ? .red : (d.status.isFinal ? .green : .bold))]
        out.append("")
        out.append("Saga       \(d.sagaId) (partition \(d.partition)) · \(d.status.rawValue)\(d.paused ? " · paused" : "")")
        if let f = d.failure {
            if let step = f.step { out.append("Failed at  \(step)\(f.title.map { " (\($0))" } ?? "")\(f.agency.map { " · \($0)" } ?? "") · \(f.kind)") }
            out.append("Reason     \(PersonalData.maskText(f.reason ?? f.code ?? "not recorded"))")
            out.append("Applicant  \(f.applicantCan)")
        }
        let sla = d.slaLeft.ms >= 0 ? "\(d.slaLeft) working time left" : "overdue by \(WorkingTime(ms: -d.slaLeft.ms)) working time"
        out.append("SLA        \(d.status.isFinal ? "finished" : sla) · deadline \(LocalTime.full(d.deadline))")
        for b in d.blocking {
            out.append("")
            let name = b.blocker.step.map { $0 + (b.title.map { " (\($0))" } ?? "") } ?? "saga"
            out.append(style.paint("Blocking   \(name)", .red) + " — \(b.blocker.status), \(b.blocker.turn)'s turn")
            out.append("  why      \(PersonalData.maskText(b.blocker.reason))")
            if let since = b.blocker.since { out.append("  since    \(LocalTime.full(since))") }
            if let a = b.lastAttempt {
                let ended = a.endedAt.map { " → \(LocalTime.full($0))" } ?? " (no answer yet)"
                out.append("  attempt  #\(a.number) dispatched \(LocalTime.full(a.dispatchedAt))\(ended), \(a.outcome)\(a.detail.map { ": " + PersonalData.maskText($0) } ?? "")")
            }
            if let e = b.lastError { out.append("  error    \(e)") }
            if let topic = b.topic {
                out.append("  waits on \(topic) (partition \(d.partition)), consumer group \(b.consumerGroup ?? "?")")
                out.append("  lag      " + (b.lag.map { "\($0) record(s) not yet consumed on that partition" } ?? "unknown")
                           + (b.lagNote.map { " (\($0))" } ?? ""))
                for g in b.groups ?? [] {
                    let members = g.members.map { $0 == 0 ? "no live member" : "\($0) live member(s)" } ?? "members unknown"
                    let waiting = g.lag.map { "\($0) record(s) waiting on \(g.topic) (partition \(d.partition))" } ?? "lag unknown"
                    out.append("  \(g.role.padding(toLength: 8, withPad: " ", startingAt: 0)) \(g.group): \(members), \(waiting)")
                }
                if let pile = b.pileUp { out.append("  " + style.paint("⚠ " + pile, .red)) }
            }
        }
        out.append("")
        if d.timers.isEmpty { out.append("Timers     none") } else {
            var table = Table(["TIMER", "DUE", "IN (WORKING)"])
            for timer in d.timers {
                let when = timer.inWorking.ms >= 0 ? timer.inWorking.description : "overdue \(WorkingTime(ms: -timer.inWorking.ms)): fires on the next pass"
                table.add([Cell(timer.id), Cell(LocalTime.full(timer.due)), Cell(when)])
            }
            out.append(table.render(style))
        }
        if !d.actions.isEmpty {
            out.append("")
            out.append("What would unblock it:")
            for a in d.actions { out.append("  " + style.paint(a.command, .blue) + "\n      " + a.why) }
        }
        out.append("")
        out.append(style.paint("source: \(d.source)", .dim))
        return out.joined(separator: "\n")
    }

    /// One item of the operator's queue (a saga may have several): an open 办不成事 case
    /// (`kind` `forward` or `compensation`), a paused saga (`paused`, `step` `-`), or a held step (`held`).
    public struct CaseRow: Encodable {
        public var sagaId: String
        public var bundle: String
        public var step: String
        /// `forward`, `compensation` (办不成事 cases), `paused` (the saga), `held` (a step).
        public var kind: String
        public var code: String?
        public var reason: String
        public var openedAt: Instant
        public var waiting: WorkingTime?
        public var slaLeft: WorkingTime?
        public var applicant: String?
    }

    /// `pausedAt(sagaId, step)`: when the saga (step nil) or the step was paused, if known.
    public static func caseRows(_ sagas: [SagaState], library: BundleLibrary, now: Instant, revealPII: Bool,
                                pausedAt: ((String, String?) -> Instant?)? = nil) -> [CaseRow] {
        sagas.flatMap { s -> [CaseRow] in
            let bundle = library.bundle(s.bundleId, version: s.bundleVersion)
            let calendar = bundle.flatMap(library.calendar(for:))
            let summary = SagaSummary(s, bundle: bundle, calendar: calendar, now: now, revealPII: revealPII)
            var rows = s.manualCases.map { c in
                CaseRow(sagaId: s.sagaId, bundle: s.bundleId, step: c.step, kind: c.kind.rawValue, code: c.code,
                        reason: revealPII ? c.reason : PersonalData.maskText(c.reason), openedAt: c.openedAt,
                        waiting: calendar.map { WorkingTime(ms: $0.workingTime(from: c.openedAt, to: now)) }, slaLeft: summary.slaLeft,
                        applicant: summary.applicant)
            }
            guard !s.status.isFinal else { return rows }
            // Paused sagas and held steps wait on a person too. Since when: the pause's audit event,
            // when the caller has it; else the saga's last change is not known here, so its submission.
            let since: (String?) -> Instant = { step in pausedAt?(s.sagaId, step) ?? s.submittedAt }
            func row(_ step: String?, _ kind: String, _ reason: String) -> CaseRow {
                let at = since(step)
                return CaseRow(sagaId: s.sagaId, bundle: s.bundleId, step: step ?? "-", kind: kind, code: nil, reason: reason, openedAt: at,
                               waiting: calendar.map { WorkingTime(ms: $0.workingTime(from: at, to: now)) }, slaLeft: summary.slaLeft,
                               applicant: summary.applicant)
            }
            if s.paused { rows.append(row(nil, "paused", "saga paused: no step is dispatched until `yishi sagas resume \(s.sagaId)`")) }
            if let bundle {
                for (i, st) in s.steps.enumerated() where i < bundle.steps.count && st.isPaused && !st.status.isDone {
                    let id = bundle.steps[i].id
                    rows.append(row(id, "held", "step held (\(st.status.rawValue)): released by `yishi sagas resume \(s.sagaId) --step \(id)`"))
                }
            }
            return rows
        }.sorted { ($0.openedAt, $0.sagaId, $0.step) < ($1.openedAt, $1.sagaId, $1.step) }
    }

    public static func cases(_ rows: [CaseRow], style: Style) -> String {
        var table = Table(["SAGA", "STEP", "KIND", "CODE", "OPENED", "WAITING", "SLA LEFT", "APPLICANT", "REASON"], shrinkable: 8)
        for r in rows {
            table.add([Cell(r.sagaId), Cell(r.step), Cell(r.kind), Cell(r.code ?? "-", .red), Cell(LocalTime.short(r.openedAt)),
                       Cell(r.waiting?.description ?? "-"),
                       Cell(r.slaLeft.map { $0.ms < 0 ? "overdue \(WorkingTime(ms: -$0.ms))" : $0.description } ?? "-"),
                       Cell(r.applicant ?? "-"), Cell(r.reason)])
        }
        let cases = rows.filter { $0.kind == "forward" || $0.kind == "compensation" }.count
        return table.render(style) + "\n\(rows.count) item(s) wait for an operator: \(cases) open case(s) in the 办不成事 queue, "
            + "\(rows.filter { $0.kind == "paused" }.count) paused saga(s), \(rows.filter { $0.kind == "held" }.count) held step(s); "
            + "`yishi sagas diagnose SAGA` says what would close each; times UTC+8"
    }

    /// The outcome of an action over one saga or a filter, gathered from every partition's reply.
    public struct ActionOutcome: Encodable {
        public var action: String
        public var dryRun: Bool
        public var affected: [String]
        public var refused: [OpsRefusal]
        /// Some partition had more matches than the limit: run again for the rest.
        public var more: Bool

        public init(action: String, dryRun: Bool, replies: [OpsReply]) {
            self.action = action
            self.dryRun = dryRun
            affected = replies.flatMap { $0.affected ?? [] }.sorted()
            refused = replies.flatMap { $0.refused ?? [] }.sorted { $0.sagaId < $1.sagaId }
            more = replies.contains { $0.more == true }
        }
    }

    public static func actionOutcome(_ o: ActionOutcome, style: Style) -> String {
        let verb = o.dryRun ? "would apply to" : "applied to"
        var out = [(o.dryRun ? style.paint("DRY RUN ", .yellow) : "") + "\(o.action): \(verb) \(o.affected.count) saga(s), refused for \(o.refused.count)"]
        if !o.affected.isEmpty || !o.refused.isEmpty {
            var table = Table(["SAGA", "OUTCOME", "REASON"])
            for id in o.affected { table.add([Cell(id), Cell(o.dryRun ? "would apply" : "applied", .green), ""]) }
            for r in o.refused { table.add([Cell(r.sagaId), Cell("refused", .red), Cell(PersonalData.maskText(r.reason))]) }
            out.append(table.render(style))
        }
        if o.more { out.append("more sagas matched than the limit; run again for the rest") }
        if o.dryRun, !o.affected.isEmpty { out.append("nothing changed; run again without --dry-run to apply") }
        return out.joined(separator: "\n")
    }

    public static func lag(_ rows: [LagProbe.Row], style: Style) -> String {
        var table = Table(["GROUP", "TOPIC", "PARTITIONS", "COMMITTED", "LAG"])
        for r in rows {
            table.add([Cell(r.group), Cell(r.topic), Cell(String(r.partitions.count)),
                       Cell("\(r.committedPartitions)/\(r.partitions.count)", r.committedPartitions == 0 ? .yellow : nil),
                       Cell((r.exact ? "" : "~") + String(r.lag), r.lag > 0 ? .yellow : nil)])
        }
        return table.render(style) + "\n" + style.paint("note: " + LagProbe.caveat + "; COMMITTED = partitions with a committed offset", .dim)
    }
}
