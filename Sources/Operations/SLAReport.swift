import Foundation
import Messaging
import SagaEngine

/// The 督查 (supervision) SLA report: figures per bundle, agency and step over a period, read
/// from the audit trail (`saga-events`) alone. Pure: the same sagas, period and `asOf` always give
/// the same figures. Durations are working time on each bundle's business calendar.
///
/// Definitions (docs/cli.md, `yishi report sla`):
/// - A saga is **on time** when it finished (any final status) by its deadline and no
///   `slaBreached` event was recorded; **late** when it breached (the event, or a finish after
///   the deadline, or still open at `asOf` after it); otherwise **open**, left out of on-time %.
/// - A step counts once per saga it was dispatched in; it **ended** at its answer that settled it
///   (succeeded, rejected, resolved manually, skipped); its time is first dispatch → end, and it is
///   on time when that time less the time waiting for the applicant's 容缺 materials is within
///   the step's timeout (one attempt's allowance).
/// - Percentiles are nearest-rank (the ⌈p·n⌉-th smallest value).
/// - A breach **arose** at every step open at the breach instant: out at its department,
///   waiting for the applicant (容缺), or held as a 办不成事 case; with none open, at the hub.
/// - A saga's time (SLA start → finish, or `asOf`) is split into department (some dispatch or
///   compensation unanswered), applicant (容缺 wait), operator (办不成事 case open) and hub (the
///   rest: orchestration overhead — queueing, dispatch, backoff waits), in that priority.
public struct SLAReport: Encodable, Sendable {
    /// One saga as the report reads it.
    public struct Input: Sendable {
        public var sagaId: String
        public var bundle: CompiledBundle
        public var calendar: BusinessCalendar
        /// Where the SLA counts from (the state's `submittedAt`, else the `submitted` event's instant).
        public var slaStart: Instant
        public var deadline: Instant
        /// The saga's audit events in `saga-events` order.
        public var events: [AuditEvent]

        public init(sagaId: String, bundle: CompiledBundle, calendar: BusinessCalendar, slaStart: Instant, deadline: Instant? = nil,
                    events: [AuditEvent]) {
            self.sagaId = sagaId
            self.bundle = bundle
            self.calendar = calendar
            self.slaStart = slaStart
            self.deadline = deadline ?? calendar.addWorkingTime(slaStart, bundle.slaWorkingMs)
            self.events = events
        }
    }

    /// Count, on time and the working-hour percentiles of one group.
    public struct Figures: Encodable, Equatable, Sendable {
        public var count = 0
        public var onTime = 0
        public var late = 0
        /// Not decided yet (running, not past its deadline); not in `onTimePercent`.
        public var open = 0
        /// onTime / (onTime + late) × 100; nil when nothing is decided.
        public var onTimePercent: Double?
        /// Nearest-rank percentiles of the durations (working hours, 3 decimals); nil when none ended.
        public var p50WorkingHours: Double?
        public var p95WorkingHours: Double?
        public var breaches = 0
        public var manualOpened = 0
        public var manualResolved = 0
        /// p50 of resolved 办不成事 cases' handling time (opened → resolved), working hours.
        public var manualHandlingP50WorkingHours: Double?
        /// 容缺: supplements asked for and handed in.
        public var supplementsRequested = 0
        public var supplementsProvided = 0

        public init() {}
    }

    public struct BundleRow: Encodable, Sendable {
        public var bundle: String
        public var title: String
        public var figures: Figures
        public var completed: Int
        /// Sum of the sagas' time split, working hours.
        public var departmentWorkingHours: Double
        public var applicantWorkingHours: Double
        public var operatorWorkingHours: Double
        public var hubWorkingHours: Double
        /// hub / all × 100 (orchestration overhead); nil when no time passed.
        public var hubPercent: Double?
    }

    public struct AgencyRow: Encodable, Sendable {
        public var agency: String
        public var title: String
        public var figures: Figures
    }

    public struct StepRow: Encodable, Sendable {
        public var bundle: String
        public var step: String
        public var title: String
        public var agency: String
        /// The step's timeout: its on-time budget (working hours).
        public var budgetWorkingHours: Double
        public var figures: Figures
    }

    /// Where one breach arose.
    public struct Holder: Encodable, Equatable, Sendable {
        /// Step id, or nil when nothing was open (the hub).
        public var step: String?
        public var agency: String?
        /// `department`, `applicant` (容缺), `operator` (办不成事) or `hub`.
        public var waitingOn: String
        public init(step: String?, agency: String?, waitingOn: String) { self.step = step; self.agency = agency; self.waitingOn = waitingOn }
    }

    public struct Breach: Encodable, Sendable {
        public var sagaId: String
        public var bundle: String
        public var deadline: Instant
        public var breachedAt: Instant
        public var arose: [Holder]
    }

    public struct CaseRow: Encodable, Sendable {
        public var sagaId: String
        public var bundle: String
        public var step: String
        public var agency: String
        /// `forward` or `compensation`.
        public var kind: String
        public var detail: String?
        public var openedAt: Instant
        public var resolvedAt: Instant?
        /// `stepRetried`, `stepSkipped`, `stepResolvedManually`; nil while open.
        public var resolution: String?
        /// Opened → resolved (or → `asOf` while open), working hours.
        public var handlingWorkingHours: Double
    }

    public struct SagaRow: Encodable, Sendable {
        public var sagaId: String
        public var bundle: String
        /// The final status, or `running` when not finished by `asOf`.
        public var status: String
        public var slaStart: Instant
        public var deadline: Instant
        public var finishedAt: Instant?
        /// `onTime`, `late` or `open`.
        public var sla: String
        /// SLA start → finish (or `asOf`), working ms, and its split.
        public var elapsedWorkingMs: Int64
        public var departmentWorkingMs: Int64
        public var applicantWorkingMs: Int64
        public var operatorWorkingMs: Int64
        public var hubWorkingMs: Int64
        public var supplementsRequested: Int
        public var manualCases: Int
    }

    /// `YYYY-MM-DD`, both days included, in `timeZone`.
    public var from: String
    public var to: String
    /// The calendar zone the days and times are in, e.g. `Asia/Shanghai (UTC+08:00)`.
    public var timeZone: String
    public var asOf: Instant
    public var bundleFilter: String?
    public var agencyFilter: String?
    public var bundles: [BundleRow]
    public var agencies: [AgencyRow]
    public var steps: [StepRow]
    public var breaches: [Breach]
    public var cases: [CaseRow]
    public var sagas: [SagaRow]

    // MARK: - building

    /// The report over `sagas` (already chosen by period and bundle); `agency` narrows steps,
    /// breaches and cases to that agency's steps and sagas to bundles with a step there.
    /// `agencyTitles` names agencies (their catalogue titles).
    public init(sagas inputs: [Input], from: String, to: String, timeZone: String, asOf: Instant, bundle: String? = nil,
                agency: String? = nil, agencyTitles: [String: String] = [:]) {
        self.from = from
        self.to = to
        self.timeZone = timeZone
        self.asOf = asOf
        bundleFilter = bundle
        agencyFilter = agency
        let chosen = inputs.filter { i in agency == nil || i.bundle.steps.contains { $0.agency == agency } }
            .sorted { ($0.slaStart, $0.sagaId) < ($1.slaStart, $1.sagaId) }
        let analyses = chosen.map { SagaAnalysis($0, asOf: asOf) }

        var breaches: [Breach] = []
        var cases: [CaseRow] = []
        var sagaRows: [SagaRow] = []
        // Accumulators keyed by bundle, agency, bundle/step.
        var bundleAcc: [String: Acc] = [:], agencyAcc: [String: Acc] = [:], stepAcc: [String: Acc] = [:]
        var split: [String: [Int64]] = [:]
        var completed: [String: Int] = [:]
        for a in analyses {
            let b = a.input.bundle
            let inScope: (String?) -> Bool = { step in
                guard let agency else { return true }
                guard let step, let i = b.stepIndex(of: step) else { return false }
                return b.steps[i].agency == agency
            }
            var acc = bundleAcc[b.id] ?? Acc()
            acc.add(sla: a.sla, durationMs: a.finishedAt == nil ? nil : a.elapsedMs)
            if a.breach != nil { acc.breaches += 1 }
            for c in a.cases where inScope(c.step) { acc.addCase(c) }
            for (step, n) in a.supplementsRequested where inScope(step) { acc.requested += n }
            for (step, n) in a.supplementsProvided where inScope(step) { acc.provided += n }
            bundleAcc[b.id] = acc
            if a.status == "completed" { completed[b.id, default: 0] += 1 }
            var s = split[b.id] ?? [0, 0, 0, 0]
            s[0] += a.departmentMs; s[1] += a.applicantMs; s[2] += a.operatorMs; s[3] += a.hubMs
            split[b.id] = s

            for (index, st) in b.steps.enumerated() where agency == nil || st.agency == agency {
                guard let facts = a.steps[st.id] else { continue }
                let key = b.id + "\u{0}" + String(index)
                var sa = stepAcc[key] ?? Acc()
                var ga = agencyAcc[st.agency] ?? Acc()
                let onTime: SLAState = facts.endedAt == nil ? .open : (facts.judgedMs <= st.timeoutMs ? .onTime : .late)
                sa.add(sla: onTime, durationMs: facts.endedAt == nil ? nil : facts.durationMs)
                ga.add(sla: onTime, durationMs: facts.endedAt == nil ? nil : facts.durationMs)
                if let breach = a.breach, breach.arose.contains(where: { $0.step == st.id }) { sa.breaches += 1; ga.breaches += 1 }
                for c in a.cases where c.step == st.id { sa.addCase(c); ga.addCase(c) }
                sa.requested += a.supplementsRequested[st.id] ?? 0; ga.requested += a.supplementsRequested[st.id] ?? 0
                sa.provided += a.supplementsProvided[st.id] ?? 0; ga.provided += a.supplementsProvided[st.id] ?? 0
                stepAcc[key] = sa
                agencyAcc[st.agency] = ga
            }
            if var breach = a.breach {
                breach.arose = breach.arose.filter { agency == nil || $0.agency == agency || $0.step == nil }
                if agency == nil || !breach.arose.isEmpty { breaches.append(breach) }
            }
            cases += a.cases.filter { inScope($0.step) }
            sagaRows.append(SagaRow(sagaId: a.input.sagaId, bundle: b.id, status: a.status, slaStart: a.input.slaStart, deadline: a.input.deadline,
                                    finishedAt: a.finishedAt, sla: a.sla.rawValue, elapsedWorkingMs: a.elapsedMs,
                                    departmentWorkingMs: a.departmentMs, applicantWorkingMs: a.applicantMs, operatorWorkingMs: a.operatorMs,
                                    hubWorkingMs: a.hubMs, supplementsRequested: a.supplementsRequested.values.reduce(0, +),
                                    manualCases: a.cases.count))
        }
        let seenBundles = Dictionary(chosen.map { ($0.bundle.id, $0.bundle) }, uniquingKeysWith: { a, _ in a })
        bundles = seenBundles.keys.sorted().map { id in
            let s = split[id] ?? [0, 0, 0, 0]
            let all = s.reduce(0, +)
            return BundleRow(bundle: id, title: seenBundles[id]!.definition.title, figures: bundleAcc[id]?.figures ?? Figures(),
                             completed: completed[id] ?? 0, departmentWorkingHours: Self.hours(s[0]), applicantWorkingHours: Self.hours(s[1]),
                             operatorWorkingHours: Self.hours(s[2]), hubWorkingHours: Self.hours(s[3]),
                             hubPercent: all > 0 ? Self.round(Double(s[3]) * 100 / Double(all), 1) : nil)
        }
        agencies = agencyAcc.keys.sorted().map { AgencyRow(agency: $0, title: agencyTitles[$0] ?? $0, figures: agencyAcc[$0]!.figures) }
        steps = seenBundles.keys.sorted().flatMap { id -> [StepRow] in
            let b = seenBundles[id]!
            return b.steps.enumerated().compactMap { index, st in
                guard let acc = stepAcc[id + "\u{0}" + String(index)] else { return nil }
                return StepRow(bundle: id, step: st.id, title: b.definition.steps[index].title ?? st.id, agency: st.agency,
                               budgetWorkingHours: Self.hours(st.timeoutMs), figures: acc.figures)
            }
        }
        self.breaches = breaches
        self.cases = cases.sorted { ($0.openedAt, $0.sagaId, $0.step) < ($1.openedAt, $1.sagaId, $1.step) }
        self.sagas = sagaRows
    }

    /// Nearest-rank percentile `p` (0 < p ≤ 100) of `values`; nil when empty.
    public static func percentile(_ values: [Int64], _ p: Double) -> Int64? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    static func hours(_ ms: Int64) -> Double { round(Double(ms) / 3_600_000, 3) }
    static func round(_ x: Double, _ places: Int) -> Double {
        let f = pow(10, Double(places))
        return (x * f).rounded() / f
    }

    enum SLAState: String { case onTime, late, open }

    /// A group's running totals.
    struct Acc {
        var onTime = 0, late = 0, open = 0, breaches = 0, opened = 0, resolved = 0, requested = 0, provided = 0
        var durations: [Int64] = []
        var handling: [Int64] = []

        mutating func add(sla: SLAState, durationMs: Int64?) {
            switch sla { case .onTime: onTime += 1; case .late: late += 1; case .open: open += 1 }
            if let durationMs { durations.append(durationMs) }
        }

        mutating func addCase(_ c: CaseRow) {
            opened += 1
            if c.resolvedAt != nil { resolved += 1; handling.append(Int64((c.handlingWorkingHours * 3_600_000).rounded())) }
        }

        var figures: Figures {
            var f = Figures()
            f.count = onTime + late + open
            f.onTime = onTime
            f.late = late
            f.open = open
            f.onTimePercent = onTime + late > 0 ? SLAReport.round(Double(onTime) * 100 / Double(onTime + late), 1) : nil
            f.p50WorkingHours = SLAReport.percentile(durations, 50).map(SLAReport.hours)
            f.p95WorkingHours = SLAReport.percentile(durations, 95).map(SLAReport.hours)
            f.breaches = breaches
            f.manualOpened = opened
            f.manualResolved = resolved
            f.manualHandlingP50WorkingHours = SLAReport.percentile(handling, 50).map(SLAReport.hours)
            f.supplementsRequested = requested
            f.supplementsProvided = provided
            return f
        }
    }
}

/// One saga's audit trail replayed for the report.
struct SagaAnalysis {
    /// A span the saga waited on someone: kind 0 department, 1 applicant (容缺), 2 operator (办不成事); key = step (`step/undo` for a compensation).
    struct Interval { var kind: Int; var key: String; var a: Instant; var b: Instant }
    struct StepFacts {
        var firstDispatch: Instant
        var endedAt: Instant?
        var applicantMs: Int64 = 0
        var durationMs: Int64 = 0
        /// Duration less the applicant's 容缺 wait: what the on-time budget is compared with.
        var judgedMs: Int64 { durationMs - applicantMs }
    }

    let input: SLAReport.Input
    var steps: [String: StepFacts] = [:]
    var cases: [SLAReport.CaseRow] = []
    var supplementsRequested: [String: Int] = [:]
    var supplementsProvided: [String: Int] = [:]
    var finishedAt: Instant?
    var status = "running"
    var breach: SLAReport.Breach?
    var sla: SLAReport.SLAState = .open
    var elapsedMs: Int64 = 0
    var departmentMs: Int64 = 0, applicantMs: Int64 = 0, operatorMs: Int64 = 0, hubMs: Int64 = 0

    init(_ input: SLAReport.Input, asOf: Instant) {
        self.input = input
        let b = input.bundle, cal = input.calendar
        func agency(_ step: String?) -> String? { step.flatMap(b.stepIndex(of:)).map { b.steps[$0].agency } }
        // Open intervals by key; closed ones by kind.
        var department: [String: Instant] = [:], applicant: [String: Instant] = [:], operatorOpen: [String: Instant] = [:]
        var closed: [Interval] = []
        var openCase: [String: Int] = [:]  // step → index in cases
        func close(_ open: inout [String: Instant], _ key: String, _ kind: Int, at: Instant) {
            if let start = open.removeValue(forKey: key) { closed.append(Interval(kind: kind, key: key, a: start, b: at)) }
        }
        func end(_ step: String, at: Instant) {
            guard var f = steps[step], f.endedAt == nil else { return }
            f.endedAt = at
            f.durationMs = cal.workingTime(from: f.firstDispatch, to: at)
            steps[step] = f
        }
        var breachedAt: Instant?
        var holders: [SLAReport.Holder] = []
        for e in input.events {
            let step = e.step ?? ""
            switch e.kind {
            case .stepDispatched:
                if steps[step] == nil { steps[step] = StepFacts(firstDispatch: e.at) }
                steps[step]!.endedAt = nil  // a retried step runs again
                department[step] = department[step] ?? e.at
            case .stepSucceeded, .stepRejected:
                close(&department, step, 0, at: e.at)
                end(step, at: e.at)
            case .stepFailed, .stepTimedOut:
                close(&department, step, 0, at: e.at)
            case .supplementRequested:
                close(&department, step, 0, at: e.at)
                if e.detail?.contains("abandoned") == true { break }
                supplementsRequested[step, default: 0] += 1
                applicant[step] = applicant[step] ?? e.at
            case .supplementProvided:
                supplementsProvided[step, default: 0] += 1
                if let start = applicant[step] { steps[step]?.applicantMs += cal.workingTime(from: start, to: e.at) }
                close(&applicant, step, 1, at: e.at)
            case .manualCaseOpened:
                let kind = e.detail?.hasPrefix("compensation ") == true ? "compensation" : "forward"
                openCase[step] = cases.count
                cases.append(SLAReport.CaseRow(sagaId: input.sagaId, bundle: b.id, step: step, agency: agency(step) ?? "-", kind: kind,
                                               detail: e.detail.map(PersonalData.maskText), openedAt: e.at, resolvedAt: nil, resolution: nil, handlingWorkingHours: 0))
                operatorOpen[step] = operatorOpen[step] ?? e.at
            case .stepRetried, .stepSkipped, .stepResolvedManually:
                if let i = openCase.removeValue(forKey: step) {
                    cases[i].resolvedAt = e.at
                    cases[i].resolution = e.kind.rawValue
                }
                close(&operatorOpen, step, 2, at: e.at)
                if let start = applicant[step] { steps[step]?.applicantMs += cal.workingTime(from: start, to: e.at) }
                close(&applicant, step, 1, at: e.at)
                if e.kind != .stepRetried { end(step, at: e.at) }
            case .compensationDispatched:
                department[step + "/undo"] = department[step + "/undo"] ?? e.at
            case .compensationSucceeded, .compensationFailed:
                close(&department, step + "/undo", 0, at: e.at)
            case .slaBreached:
                guard breachedAt == nil else { break }
                breachedAt = e.at
                holders = Self.holders(department: department, applicant: applicant, operatorOpen: operatorOpen, agency: agency)
            case .sagaFinished:
                if finishedAt == nil { finishedAt = e.at; status = e.detail ?? "finished" }
            default: break
            }
            if finishedAt != nil { break }
        }
        let end = finishedAt ?? max(asOf, input.slaStart)
        if breachedAt == nil, end > input.deadline {
            // Breached without its event (finished late before the timer fired, or read before it):
            // attributed from the intervals open at the deadline.
            breachedAt = input.deadline
            let at = input.deadline
            func openAt(_ open: [String: Instant], _ kind: Int) -> [String: Instant] {
                var out = open.filter { $0.value <= at }
                for c in closed where c.kind == kind && c.a <= at && c.b > at { out[c.key] = c.a }
                return out
            }
            holders = Self.holders(department: openAt(department, 0), applicant: openAt(applicant, 1), operatorOpen: openAt(operatorOpen, 2),
                                   agency: agency)
        }
        for (k, s) in department { closed.append(Interval(kind: 0, key: k, a: s, b: end)) }
        for (k, s) in applicant { closed.append(Interval(kind: 1, key: k, a: s, b: end)) }
        for (k, s) in operatorOpen { closed.append(Interval(kind: 2, key: k, a: s, b: end)) }
        for i in cases.indices {
            cases[i].handlingWorkingHours = SLAReport.hours(cal.workingTime(from: cases[i].openedAt, to: cases[i].resolvedAt ?? end))
        }
        if let breachedAt {
            breach = SLAReport.Breach(sagaId: input.sagaId, bundle: b.id, deadline: input.deadline, breachedAt: breachedAt, arose: holders)
            sla = .late
        } else if finishedAt != nil {
            sla = .onTime
        }
        // The split: sweep the instants where some interval starts or ends.
        let start = input.slaStart
        var cuts = Set([start, end])
        for c in closed { cuts.insert(min(max(c.a, start), end)); cuts.insert(min(max(c.b, start), end)) }
        let sorted = cuts.sorted()
        for (a, z) in zip(sorted, sorted.dropFirst()) {
            let ms = cal.workingTime(from: a, to: z)
            let covering = Set(closed.filter { $0.a <= a && $0.b >= z }.map(\.kind))
            if covering.contains(0) { departmentMs += ms } else if covering.contains(1) { applicantMs += ms }
            else if covering.contains(2) { operatorMs += ms } else { hubMs += ms }
        }
        elapsedMs = cal.workingTime(from: start, to: end)
    }

    /// Steps holding the saga at a breach: at departments, waiting for the applicant, or held as cases.
    static func holders(department: [String: Instant], applicant: [String: Instant], operatorOpen: [String: Instant],
                        agency: (String?) -> String?) -> [SLAReport.Holder] {
        var out: [SLAReport.Holder] = []
        for key in department.keys.sorted() {
            let step = key.hasSuffix("/undo") ? String(key.dropLast(5)) : key
            out.append(.init(step: step, agency: agency(step), waitingOn: "department"))
        }
        for step in applicant.keys.sorted() { out.append(.init(step: step, agency: agency(step), waitingOn: "applicant")) }
        for step in operatorOpen.keys.sorted() { out.append(.init(step: step, agency: agency(step), waitingOn: "operator")) }
        return out.isEmpty ? [.init(step: nil, agency: nil, waitingOn: "hub")] : out
    }

}
