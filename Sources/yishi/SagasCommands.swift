import Foundation
import Operations
import Orchestrator
import SagaEngine
import YishiKafka

var sagasGroup: CommandGroup { CommandGroup(
    name: "sagas", summary: "Find sagas, read one's timeline, ask why it is stuck, and act on it (one saga or a filter).",
    commands: [ListSagas.self, ShowSaga.self, SagaResults.self, DiagnoseSaga.self, RetryStep.self, SkipStep.self, ResolveStep.self, SupplyMaterials.self,
               PauseSaga.self, ResumeSaga.self, CancelSaga.self]) }

var casesGroup: CommandGroup { CommandGroup(
    name: "cases", summary: "Everything waiting on an operator: open 办不成事 cases, paused sagas, held steps; oldest first.",
    commands: [ListCases.self], defaultCommand: ListCases.self) }

enum ListSagas: Command {
    static let name = "list"
    static let summary = "sagas matching a filter, oldest first, a page at a time"
    static let help = """
        Usage: yishi sagas list [filter] [options]

        One row per saga: status, submitted, SLA left in working time, the steps holding it up,
        region and applicant (masked). Answered by the orchestrator (one reply per partition), or
        from the saga-state changelog when none answers. Prints the --after cursor of the next page.

        \(FilterOptions.help)

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        let (filter, _) = try FilterOptions.read(&args, defaultLimit: 50)
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let library = try env.library()
        var source = SagaSource(hub: options.hub, mode: options.source)
        let (sagas, next) = try source.list(filter, library: library)
        options.notes(source)
        try options.recordReveal(sagaIds: sagas.map(\.sagaId))
        let rows = sagas.map { s in
            let bundle = library.bundle(s.bundleId, version: s.bundleVersion)
            return SagaSummary(s, bundle: bundle, calendar: bundle.flatMap(library.calendar(for:)), now: options.now, revealPII: options.revealPII)
        }
        if options.json {
            struct Page: Encodable { var sagas: [SagaSummary]; var next: String?; var source: String }
            try printJSONValue(Page(sagas: rows, next: next?.description, source: source.answeredBy.rawValue), revealPII: options.revealPII)
        } else {
            print(Render.sagaList(rows, next: next, style: options.style))
        }
        return Exit.ok
    }
}

/// A saga's state, bundle, calendar and audit trail: what show and diagnose start from.
struct LoadedSaga {
    var state: SagaState
    var bundle: CompiledBundle
    var calendar: BusinessCalendar
    var audit: [AuditEvent]
    var source: SagaSource

    /// `SAGA_ID [options]`: the saga, read after the access record when personal data is revealed.
    static func load(_ args: inout Arguments, _ env: Environment) throws -> (OperatorOptions, LoadedSaga) {
        let options = try OperatorOptions.read(&args)
        let rest = try args.positionals()
        guard rest.count == 1 else { throw UsageError("expected exactly one SAGA_ID") }
        let saga = try load(rest[0], options, env)
        try options.recordReveal(sagaIds: [rest[0]])
        return (options, saga)
    }

    static func load(_ id: String, _ options: OperatorOptions, _ env: Environment) throws -> LoadedSaga {
        var source = SagaSource(hub: options.hub, mode: options.source)
        let (state, audit) = try Changelog(hub: options.hub, skipped: source.skipped).audit(of: id) { try source.state(of: id) }
        options.notes(source)
        let library = try env.library()
        guard let bundle = library.bundle(state.bundleId, version: state.bundleVersion), let calendar = library.calendar(for: bundle) else {
            throw OperationsError.notFound("saga \(id) runs \(state.bundleId) v\(state.bundleVersion), which is not in \(env.bundlesDir.path)")
        }
        return LoadedSaga(state: state, bundle: bundle, calendar: calendar, audit: audit, source: source)
    }

    func timeline(_ options: OperatorOptions) -> SagaTimeline {
        SagaTimeline(state: state, bundle: bundle, calendar: calendar, audit: audit, now: options.now,
                     source: source.answeredBy.rawValue, revealPII: options.revealPII)
    }
}

enum ShowSaga: Command {
    static let name = "show"
    static let summary = "one saga's timeline: every step and attempt, working-time durations, blocker, SLA left"
    static let help = """
        Usage: yishi sagas show SAGA_ID [options]

        The saga's state (from the orchestrator, or its saga-state partition), and its audit trail
        from saga-events (its partition only): each step with its attempts (dispatched, answered,
        outcome, working time on the bundle's business calendar), operator actions with who did
        them, the current blockers and whose turn it is, and the SLA left in working time.
        --json adds the form values the saga keeps (masked unless --reveal-pii).

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let (options, saga) = try LoadedSaga.load(&args, env)
        let timeline = saga.timeline(options)
        try options.emit(timeline) { Render.timeline(timeline, style: options.style) }
        return Exit.ok
    }
}

enum DiagnoseSaga: Command {
    static let name = "diagnose"
    static let summary = "why is it stuck: blocking step, whose turn, lag, timers, SLA, the commands that would unblock it"
    static let help = """
        Usage: yishi sagas diagnose SAGA_ID [options]

        One answer to "why is this stuck": each blocking step and whose turn it is — the agency
        (its commands.<agency> topic, the adapter's consumer group <prefix>adapter.<agency> and its
        lag on the saga's partition), the operator (办不成事 queue), the applicant (容缺 supplement)
        or a hub retry timer — the last attempt and its error, the timers pending, the SLA left,
        and the exact commands that would unblock it. For an agency's turn it also shows the
        adapter's and the department gateway's consumer groups (<prefix>dept.<agency> on
        dept.<agency>.requests) with their live members and the records waiting on the saga's
        partition; when records wait and a group has no live member, the headline says that work
        piles up in front of that department (or adapter); so it does when members are registered
        but the records have waited --stall-after seconds (a broker that keeps a killed member
        registered, as Tansu 0.6.0, shows a dead process that way).
          --stall-after N        seconds records may wait with members registered (default 10)

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let stallText = try args.option("--stall-after") ?? "10"
        guard let stallAfter = Int64(stallText), stallAfter >= 0 else { throw UsageError("--stall-after takes whole seconds, not '\(stallText)'") }
        let (options, saga) = try LoadedSaga.load(&args, env)
        let partition = try options.hub.partition(ofSaga: saga.state.sagaId)
        let probe = LagProbe(hub: options.hub)
        let catalogues = try env.library().catalogues
        let diagnosis = Diagnosis(timeline: saga.timeline(options), state: saga.state, bundle: saga.bundle, calendar: saga.calendar,
                                  partition: partition, prefix: options.hub.prefix, lag: { agency in
            let group = probe.adapterGroup(agency)
            do {
                guard let row = try probe.lag(group: group, topics: ["commands.\(agency)"], partitions: [partition]).first,
                      let p = row.partitions.first else { return (group, nil, "topic missing") }
                return (group, p.lag, p.committed == nil ? "the group has committed nothing here: is the adapter running?" : nil)
            } catch {
                return (group, nil, "\(error)")
            }
        }, groups: { agency in
            Self.watch(agency, hub: options.hub, partition: partition, stallAfter: stallAfter)
        }, catalogues: catalogues)
        try options.emit(diagnosis) { Render.diagnosis(diagnosis, style: options.style) }
        return Exit.ok
    }
}

extension DiagnoseSaga {
    /// The adapter's and the department gateway's groups toward `agency`: live members (group
    /// coordinator) and records waiting on the saga's partition. Empty when the broker does not say.
    static func watch(_ agency: String, hub: Hub, partition: Int32, stallAfter: Int64) -> [Diagnosis.GroupWatch] {
        let adapter = HubGroups.adapter(prefix: hub.prefix, agency: agency)
        let department = HubGroups.department(prefix: hub.prefix, agency: agency)
        let members = (try? KafkaAdmin(config: hub.kafka()).describeConsumerGroups([adapter, department], timeout: hub.timeout)) ?? []
        let rows = (try? LagProbe(hub: hub).lag([(adapter, ["commands.\(agency)"]), (department, ["dept.\(agency).requests"])],
                                                partitions: [partition])) ?? []
        func lag(_ group: String) -> Int64? { rows.first { $0.group == group }.map(\.lag) }
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        func waited(_ group: String) -> Int64? { rows.first { $0.group == group }?.oldestWaitingMs.map { max(0, nowMs - $0) / 1000 } }
        return [
            Diagnosis.GroupWatch(role: "adapter", agency: agency, group: adapter, topic: hub.topic("commands.\(agency)"),
                                 members: members.first { $0.groupId == adapter }?.members.count, lag: lag(adapter), waitedSeconds: waited(adapter),
                                 pileUpSeconds: stallAfter),
            Diagnosis.GroupWatch(role: "department", agency: agency, group: department, topic: hub.topic("dept.\(agency).requests"),
                                 members: members.first { $0.groupId == department }?.members.count, lag: lag(department),
                                 waitedSeconds: waited(department), pileUpSeconds: stallAfter),
        ]
    }
}

enum ListCases: Command {
    static let name = "list"
    static let summary = "everything waiting on an operator: 办不成事 cases, paused sagas, held steps, oldest first"
    static let help = """
        Usage: yishi cases [list] [filter] [options]

        One queue of everything waiting on a person, oldest first:
          forward / compensation  an open 办不成事 case (a forward step that failed for good under
                                  `onFailure: manual`, or a compensation that failed for good);
                                  close it with `yishi sagas retry|skip|resolve|cancel`
          paused                  a paused saga (`yishi sagas resume SAGA`)
          held                    a held step (`yishi sagas resume SAGA --step STEP`)
        Each row: saga, step, kind, code, since, how long it has waited in working time, SLA left,
        applicant (masked), reason. `yishi sagas diagnose SAGA` prints the exact commands. 容缺 steps
        waiting for the applicant's materials are the applicant's turn, not listed here
        (`yishi status` counts them).

        \(FilterOptions.help)

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        var (filter, _) = try FilterOptions.read(&args)
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        if filter.status == nil { filter.status = SagaStatus.allCases.filter { !$0.isFinal } }
        let library = try env.library()
        var source = SagaSource(hub: options.hub, mode: options.source)
        let (sagas, _) = try source.list(filter, library: library)
        options.notes(source)
        let withCases = sagas.filter { s in !s.manualCases.isEmpty || s.paused || s.steps.contains { $0.isPaused && !$0.status.isDone } }
        try options.recordReveal(sagaIds: withCases.map(\.sagaId))
        let rows = Render.caseRows(withCases, library: library, now: options.now, revealPII: options.revealPII)
        try options.emit(rows) { Render.cases(rows, style: options.style) }
        return Exit.ok
    }
}

// MARK: Actions

/// What each action command needs besides the saga (or filter).
struct ActionSpec {
    var action: OpsRequest.Action
    var needsStep = false
    var needsReason = false
    var needsNote = false
    var needsAttempt = false
    /// The repeatable KEY=VALUE option that fills `data`, if any.
    var dataOption: String?
    var dataRequired = false
}

enum SagaAction {
    static func help(_ usage: String, _ text: String) -> String {
        """
        Usage: yishi sagas \(usage) [options]
               yishi sagas \(usage.replacingOccurrences(of: "SAGA_ID", with: "--filter EXPR")) [--dry-run] [options]

        \(text)

        With SAGA_ID it goes to the orchestrator instance that owns the saga. With --filter (or the
        filter options below) instead, every instance applies it to its own matching sagas, one
        engine command per saga, and the reply lists the sagas it applied to and those it refused
        with the engine's reason. --dry-run evaluates the command on a copy of each saga and
        changes nothing. Every action is in the saga's audit trail (saga-events) with --as.
          --dry-run              say what would happen, change nothing

        \(FilterOptions.help)

        \(OperatorOptions.help)
        """
    }

    static func run(_ spec: ActionSpec, _ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        let dryRun = args.flag("--dry-run")
        let step = try args.option("--step")
        let reason = try args.option("--reason")
        let note = try args.option("--note")
        let attemptText = try args.option("--attempt")
        let data = try spec.dataOption.map { try keyValues(&args, $0) } ?? nil
        var (filter, anyCriterion) = try FilterOptions.read(&args)
        let rest = try args.positionals()
        guard rest.count <= 1 else { throw UsageError("expected one SAGA_ID (or a filter), got \(rest.count) arguments") }
        if spec.needsStep, step == nil { throw UsageError("--step is required") }
        if spec.needsReason, reason == nil { throw UsageError("--reason is required") }
        if spec.needsNote, note == nil { throw UsageError("--note is required") }
        if spec.dataRequired, data == nil { throw UsageError("\(spec.dataOption ?? "data") is required") }
        var attempt: Int?
        if spec.needsAttempt {
            guard let t = attemptText, let n = Int(t), n >= 1 else { throw UsageError("--attempt N (the attempt that asked for the materials) is required") }
            attempt = n
        }
        let client = OpsClient(hub: options.hub)
        var request = OpsRequest(requestId: client.newRequestId(), by: options.hub.operatorName, action: spec.action, step: step,
                                 attempt: attempt, reason: reason, note: note, data: data, dryRun: dryRun ? true : nil)
        let replies: [OpsReply]
        if let id = rest.first {
            guard !anyCriterion else { throw UsageError("give a SAGA_ID or a filter, not both") }
            request.sagaId = id
            // Field names are checked here first (the orchestrator checks again: it is the authority).
            if let data, !data.isEmpty, spec.action == .retry || spec.action == .resolve {
                var source = SagaSource(hub: options.hub, mode: .auto)
                let state = try source.state(of: id)
                let library = try env.library()
                if let bundle = library.bundle(state.bundleId, version: state.bundleVersion),
                   let why = OperatorInputCheck.refusal(action: spec.action, step: step, data: data, bundle: bundle, catalogues: library.catalogues) {
                    throw OperationsError.refused("\(id): \(why)")
                }
            }
            replies = [try client.send(request)]
        } else {
            guard anyCriterion else { throw UsageError("a bulk action needs a filter (--filter EXPR or filter options); or give a SAGA_ID") }
            // A step action over a filter acts on the sagas that step holds up.
            if filter.step == nil, let step, spec.action == .retry || spec.action == .skip || spec.action == .resolve || spec.action == .supplement {
                filter.step = step
            }
            request.filter = filter
            replies = try client.broadcast(request)
        }
        let outcome = Render.ActionOutcome(action: describe(spec.action, step: step), dryRun: dryRun, replies: replies)
        try options.emit(outcome) { Render.actionOutcome(outcome, style: options.style) }
        if let error = replies.first(where: { !$0.ok && ($0.refused ?? []).isEmpty })?.error { printError("refused: \(error)") }
        return outcome.refused.isEmpty && replies.allSatisfy({ $0.ok }) ? Exit.ok : Exit.problems
    }

    static func describe(_ action: OpsRequest.Action, step: String?) -> String {
        action.rawValue + (step.map { " \($0)" } ?? "")
    }
}

enum RetryStep: Command {
    static let name = "retry"
    static let summary = "run a failed, backing-off or waiting step again now (optionally with corrected input)"
    static let help = SagaAction.help("retry SAGA_ID --step STEP [--set FIELD=JSON]...", """
        Re-dispatches the step now. --set FIELD=VALUE (repeatable; VALUE is JSON when it parses,
        else text) corrects the step's payload: a new revision, so the department sees a new
        request id. On a step whose compensation failed, retries the compensation.
          --step STEP            the step
          --set FIELD=VALUE      corrected payload field (repeatable); FIELD must be one of the
                                 step's payload fields (`sagas diagnose` lists them), else refused (exit 1)
        """)
    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        try SagaAction.run(ActionSpec(action: .retry, needsStep: true, dataOption: "--set"), &args, env)
    }
}

enum SkipStep: Command {
    static let name = "skip"
    static let summary = "treat a pending, failed or waiting step as done without outputs (with a reason)"
    static let help = SagaAction.help("skip SAGA_ID --step STEP --reason TEXT", """
        Successors go on without the step's outputs.
          --step STEP            the step
          --reason TEXT          why (in the audit trail)
        """)
    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        try SagaAction.run(ActionSpec(action: .skip, needsStep: true, needsReason: true), &args, env)
    }
}

enum ResolveStep: Command {
    static let name = "resolve"
    static let summary = "a failed step was done at the counter: record it with its outputs (办不成事)"
    static let help = SagaAction.help("resolve SAGA_ID --step STEP --note TEXT [--output NAME=VALUE]...", """
        Marks a failed step succeeded with the given outputs (or a failed compensation as undone).
          --step STEP            the step
          --note TEXT            what was done (in the audit trail)
          --output NAME=VALUE    an output of the step (repeatable; JSON when it parses); NAME must be
                                 one of the action's outputs in the agency catalogue, else refused (exit 1)
        """)
    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        try SagaAction.run(ActionSpec(action: .resolve, needsStep: true, needsNote: true, dataOption: "--output"), &args, env)
    }
}

enum SupplyMaterials: Command {
    static let name = "supplement"
    static let summary = "supply the materials a 容缺 step waits for; it is dispatched again"
    static let help = SagaAction.help("supplement SAGA_ID --step STEP --attempt N --material TYPE=VALUE...", """
          --step STEP            the waiting step
          --attempt N            the attempt that asked for them (`sagas show` lists it)
          --material TYPE=VALUE  a material (repeatable; JSON when it parses)
        """)
    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        try SagaAction.run(ActionSpec(action: .supplement, needsStep: true, needsAttempt: true, dataOption: "--material", dataRequired: true), &args, env)
    }
}

enum PauseSaga: Command {
    static let name = "pause"
    static let summary = "stop dispatching the saga's steps, or one step (answers already out still land)"
    static let help = SagaAction.help("pause SAGA_ID [--step STEP] [--reason TEXT]", """
        Without --step, pauses the whole saga: no new step or compensation is dispatched until
        `resume`. With --step, holds that step only: it is not dispatched, nor re-dispatched after
        a retry backoff, until `resume --step`; the other steps go on. Either way an answer already
        out still lands.
          --step STEP            hold this step only
          --reason TEXT          why (in the audit trail)
        """)
    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        try SagaAction.run(ActionSpec(action: .pause), &args, env)
    }
}

enum ResumeSaga: Command {
    static let name = "resume"
    static let summary = "resume a paused saga, or release a held step"
    static let help = SagaAction.help("resume SAGA_ID [--step STEP]", """
        Dispatches whatever became ready while the saga (or, with --step, that step) was paused.
          --step STEP            release this step only
        """)
    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        try SagaAction.run(ActionSpec(action: .resume), &args, env)
    }
}

enum CancelSaga: Command {
    static let name = "cancel"
    static let summary = "give up: compensate every completed step (newest first), end cancelled"
    static let help = SagaAction.help("cancel SAGA_ID --reason TEXT", """
          --reason TEXT          why (in the audit trail)
        """)
    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        try SagaAction.run(ActionSpec(action: .cancel, needsReason: true), &args, env)
    }
}
