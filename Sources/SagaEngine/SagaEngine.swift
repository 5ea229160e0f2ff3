/// The saga engine: a pure function from (state, input) to (state', outputs).
///
/// No clock, no randomness, no I/O: time arrives in `SagaInput.at`, backoff jitter is a hash of
/// (saga id, step id, attempt), and the only effects are the returned `SagaOutput`s, which the
/// orchestrator writes to Kafka in the same transaction as the new state. Replaying a saga's input
/// log from `SagaState(sagaId:bundle:)` therefore reproduces its state exactly.
///
/// An input that does not apply (a duplicate, a reply to an old attempt, a timer that lost its race)
/// leaves the state untouched and yields one `inputIgnored` audit event saying why.
/// Semantics in detail: docs/saga-engine.md.
public enum SagaEngine {
    public static func apply(_ state: SagaState, _ input: SagaInput, bundle: CompiledBundle, calendar: BusinessCalendar) -> (SagaState, [SagaOutput]) {
        var s = state
        let out = apply(to: &s, input, bundle: bundle, calendar: calendar)
        return (s, out)
    }

    /// In-place variant (no copy of the state's arrays); same semantics.
    public static func apply(to state: inout SagaState, _ input: SagaInput, bundle: CompiledBundle, calendar: BusinessCalendar) -> [SagaOutput] {
        var c = Context(b: bundle, at: input.at, calendar: calendar)
        // Most inputs yield at most 8 outputs (an answer that dispatches two steps: 8); 8 outputs
        // (~110 bytes each) fit the allocator's per-thread cache, 12 did not and cost a slower
        // malloc and free on every input. The few larger ones (a submit with its SLA timers
        // dispatching more than one step, a success that starts three or more) grow once.
        c.out.reserveCapacity(8)
        state.handle(input.event, &c, calendar)
        return c.out
    }

    /// Replays an input log from a fresh state; outputs are discarded.
    public static func replay(sagaId: String, _ inputs: [SagaInput], bundle: CompiledBundle, calendar: BusinessCalendar) -> SagaState {
        var s = SagaState(sagaId: sagaId, bundle: bundle)
        for i in inputs { _ = apply(to: &s, i, bundle: bundle, calendar: calendar) }
        return s
    }

    /// Retry delay before attempt `attempt + 1`: exponential from `backoffBase`, capped at
    /// `backoffCap`, then shortened by up to `jitter` of itself. The random share is a hash of
    /// (saga, step, attempt), so it spreads sagas apart yet replays identically.
    public static func backoff(step: CompiledBundle.CompiledStep, sagaId: String, attempt: Int, failures: Int) -> Int64 {
        let exp = min(max(failures - 1, 0), 40)
        let raw = step.backoffBaseMs.multipliedReportingOverflow(by: Int64(1) << exp)
        let d = raw.overflow ? step.backoffCapMs : min(step.backoffCapMs, raw.partialValue)
        let u = Double(StableHash.of(sagaId, step.id, attempt) >> 11) / Double(UInt64(1) << 53)
        return max(1, Int64(Double(d) * (1 - step.jitter * u)))
    }
}

/// FNV-1a over the strings then a SplitMix64 finaliser: stable across runs and platforms, unlike `Hasher`.
enum StableHash {
    static func of(_ a: String, _ b: String, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in a.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        h = (h ^ 0xff) &* 0x100_0000_01b3
        for byte in b.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        var z = h &+ UInt64(truncatingIfNeeded: n) &* 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Per-apply scratch: the bundle, the input instant, the outputs so far, and the calendar
/// (step and compensation timeouts count working time, as departments work office hours).
struct Context {
    let b: CompiledBundle
    let at: Instant
    let calendar: BusinessCalendar
    var out: [SagaOutput]

    init(b: CompiledBundle, at: Instant, calendar: BusinessCalendar) {
        self.b = b
        self.at = at
        self.calendar = calendar
        out = []
    }
}

extension SagaState {
    // MARK: - dispatch on input

    mutating func handle(_ event: SagaEvent, _ c: inout Context, _ calendar: BusinessCalendar) {
        guard bundleId == c.b.id, bundleVersion == c.b.version else {
            return ignore(&c, "saga runs \(bundleId) v\(bundleVersion), not \(c.b.id) v\(c.b.version)")
        }
        if case .submit(let form, let licences) = event {
            guard status == .new else { return ignore(&c, "already submitted") }
            return submit(form, licences, &c, calendar)
        }
        guard status != .new else { return ignore(&c, "not submitted yet") }
        // A success looks its step up once: for the late-success check and for `answerable`.
        // (The outputs are bound only on the rare late success: binding copied the dictionary.)
        var successStep: Int?
        if case .stepSucceeded(let step, let attempt, _) = event, let i = c.b.stepIndex(of: step) {
            if lateSuccessApplies(i, attempt, &c) {
                guard case .stepSucceeded(_, _, let outputs) = event else { return }
                return lateSuccess(i, attempt, outputs, &c)
            }
            successStep = i
        }
        guard !status.isFinal else { return ignore(&c, "saga is \(status.rawValue)") }

        switch event {
        case .submit: break
        case .stepSucceeded(let step, let attempt, let outputs):
            guard let i = answerable(step, attempt, &c, known: successStep) else { return }
            seq &+= 1
            cancelStepTimer(i, &c)
            let st = c.b.steps[i]
            steps[i].status = .succeeded
            steps[i].outputs = st.retain(outputs)
            steps[i].lastError = nil
            steps[i].missing = []
            steps[i].unconfirmed = nil
            completionOrder.append(UInt16(i))
            audit(&c, .stepSucceeded, step: st.id, attempt: attempt)
            if let type = st.issuesLicence {
                c.out.append(.licenceIssued(LicenceIssued(sagaId: sagaId, step: st.id, type: type, data: outputs)))
            }
            progress(&c)

        case .stepRejected(let step, let attempt, let code, let reason, let field):
            guard let i = answerable(step, attempt, &c) else { return }
            seq &+= 1
            cancelStepTimer(i, &c)
            steps[i].lastError = code
            audit(&c, .stepRejected, step: step, attempt: attempt, detail: field.map { "\(code): \(reason) (\($0))" } ?? "\(code): \(reason)")
            failFinally(i, code: code, reason: reason, &c)

        case .stepFailed(let step, let attempt, let code, let message):
            guard let i = answerable(step, attempt, &c) else { return }
            seq &+= 1
            cancelStepTimer(i, &c)
            audit(&c, .stepFailed, step: step, attempt: attempt, detail: "\(code): \(message)")
            technicalFailure(i, code: code, message: message, &c)

        case .supplementNeeded(let step, let attempt, let materials):
            guard let i = answerable(step, attempt, &c) else { return }
            seq &+= 1
            cancelStepTimer(i, &c)
            let refused = materials.filter { !c.b.steps[i].deferrableMaterials.contains($0) }
            if !refused.isEmpty {
                // The bundle does not accept these as 容缺: the application is incomplete.
                steps[i].lastError = HubErrorCode.materialMissing
                let reason = "missing materials not accepted as 容缺: " + refused.joined(separator: ", ")
                audit(&c, .stepRejected, step: step, attempt: attempt, detail: HubErrorCode.materialMissing + ": " + reason)
                failFinally(i, code: HubErrorCode.materialMissing, reason: reason, &c)
            } else if status == .compensating {
                steps[i].status = .cancelled
                audit(&c, .supplementRequested, step: step, attempt: attempt, detail: "saga is compensating; step abandoned")
                continueAbort(&c)
            } else {
                steps[i].status = .waitingSupplement
                steps[i].missing = materials
                audit(&c, .supplementRequested, step: step, attempt: attempt, detail: materials.joined(separator: ", "))
            }

        case .supplementProvided(let step, let attempt, let materials, let by):
            guard let i = index(step, &c) else { return }
            guard steps[i].status == .waitingSupplement, Int(steps[i].attempt) == attempt, status == .running || status == .manual else {
                return ignore(&c, "\(step) is not waiting for a supplement from attempt \(attempt)")
            }
            seq &+= 1
            var supplements = steps[i].override?["supplements"]?.objectValue ?? [:]
            supplements.merge(materials) { _, new in new }
            setOverride(i, ["supplements": .object(supplements)])
            steps[i].missing = []
            audit(&c, .supplementProvided, step: step, attempt: attempt, by: by, detail: materials.keys.sorted().joined(separator: ", "))
            dispatchReady(&c)

        case .compensationSucceeded(let step, let attempt):
            guard let i = compensationAnswerable(step, attempt, &c) else { return }
            seq &+= 1
            c.out.append(.cancelTimer(timer(.compensationTimeout(step: step, attempt: attempt), steps[i].due)))
            steps[i].status = .compensated
            audit(&c, .compensationSucceeded, step: step, attempt: attempt)
            continueAbort(&c)

        case .compensationFailed(let step, let attempt, let code, let message):
            guard let i = compensationAnswerable(step, attempt, &c) else { return }
            seq &+= 1
            c.out.append(.cancelTimer(timer(.compensationTimeout(step: step, attempt: attempt), steps[i].due)))
            audit(&c, .compensationFailed, step: step, attempt: attempt, detail: "\(code): \(message)")
            compensationFailure(i, code: code, message: message, &c)

        case .timerFired(let key):
            timerFired(key, &c)

        case .operatorCommand(let cmd):
            guard !recentCommands.contains(cmd.id) else { return ignore(&c, "command \(cmd.id) already handled") }
            operatorCommand(cmd, &c)

        case .objection(let step, let by, let reason):
            guard let i = index(step, &c) else { return }
            guard c.b.steps[i].isWait else { return ignore(&c, "\(step) is not a wait step; objections apply to notice periods") }
            // Only during the period: an objection after it ended (or before it began) is too late (or early).
            guard steps[i].status == .running, status == .running || status == .manual else {
                return ignore(&c, "no notice period of \(step) is running (\(steps[i].status.rawValue)); objection by \(by) not accepted")
            }
            seq &+= 1
            c.out.append(.cancelTimer(timer(.waitElapsed(step: step, attempt: Int(steps[i].attempt)), steps[i].due)))
            steps[i].lastError = HubErrorCode.objection
            audit(&c, .objectionReceived, step: step, attempt: Int(steps[i].attempt), by: by, detail: reason)
            failFinally(i, code: HubErrorCode.objection, reason: "objection by \(by): \(reason)", &c)
        }
    }

    private mutating func submit(_ form: JSONValue, _ licences: [String: JSONValue], _ c: inout Context, _ calendar: BusinessCalendar) {
        seq &+= 1
        // The SLA counts from the form's `submittedAt` (when the applicant handed it in), never
        // from later than the hub's own instant of receipt (`at`): a dead letter replayed days
        // later keeps its SLA start, a sender clock running ahead cannot push the deadline out.
        let start = SagaState.slaStart(form: form, receivedAt: c.at)
        submittedAt = start
        deadline = calendar.addWorkingTime(start, c.b.slaWorkingMs)
        atRiskAt = calendar.addWorkingTime(start, max(0, c.b.slaWorkingMs - c.b.atRiskRemainingMs))
        external = c.b.project(form: form, licences: licences)
        status = .running
        let gaps = noteCalendar(start, deadline, calendar)
        // `enterprise-opening v2, due 2026-03-16 17:30[, SLA from …][ (calendar gaps)]`: the UTF-8
        // of the parts copied into one byte buffer, then one String. Interpolation, `+` and even
        // `String.append` into reserved room cost ~350 instructions per part.
        var detail: [UInt8] = []
        detail.reserveCapacity(bundleId.utf8.count + 64)
        detail.append(contentsOf: bundleId.utf8)
        detail.append(contentsOf: " v".utf8)
        detail.append(contentsOf: String(bundleVersion).utf8)
        detail.append(contentsOf: ", due ".utf8)
        detail.append(contentsOf: calendar.localText(deadline).utf8)
        if start != c.at {
            detail.append(contentsOf: ", SLA from ".utf8)
            detail.append(contentsOf: calendar.localText(start).utf8)
        }
        if let gapText = calendar.describe(gaps) {
            detail.append(contentsOf: " (".utf8)
            detail.append(contentsOf: gapText.utf8)
            detail.append(contentsOf: ")".utf8)
        }
        audit(&c, .submitted, detail: String(decoding: detail, as: UTF8.self))
        c.out.append(.scheduleTimer(timer(.slaAtRisk, atRiskAt)))
        c.out.append(.scheduleTimer(timer(.slaBreach, deadline)))
        dispatchReady(&c)
    }

    /// Records on the state the calendar years between `from` and `to` that the calendar does not
    /// cover or only provisionally (`calendarNotCovered`, `calendarProvisional`): a deadline there
    /// is flagged, never silently trusted.
    @discardableResult
    private mutating func noteCalendar(_ from: Instant, _ to: Instant, _ calendar: BusinessCalendar) -> BusinessCalendar.Gaps {
        let gaps = calendar.gaps(from: from, to: to)
        if !gaps.uncovered.isEmpty { calendarNotCovered = Array(Set(calendarNotCovered ?? []).union(gaps.uncovered)).sorted() }
        if !gaps.provisional.isEmpty { calendarProvisional = Array(Set(calendarProvisional ?? []).union(gaps.provisional)).sorted() }
        return gaps
    }

    private mutating func timerFired(_ key: TimerKey, _ c: inout Context) {
        switch key {
        case .stepTimeout(let step, let attempt):
            guard let i = index(step, &c) else { return }
            guard steps[i].status == .running, Int(steps[i].attempt) == attempt, c.at >= steps[i].due else { return ignore(&c, "timer \(key.id(sagaId: sagaId)) is stale") }
            seq &+= 1
            // No answer is not a failure: the agency may have acted (an unknown outcome).
            steps[i].unconfirmed = true
            audit(&c, .stepTimedOut, step: step, attempt: attempt)
            technicalFailure(i, code: HubErrorCode.timeout, message: "no answer within \(DurationText.format(c.b.steps[i].timeoutMs))", &c)
        case .retryBackoff(let step, let attempt):
            guard let i = index(step, &c) else { return }
            guard steps[i].status == .backoff, Int(steps[i].attempt) == attempt, c.at >= steps[i].due else { return ignore(&c, "timer \(key.id(sagaId: sagaId)) is stale") }
            seq &+= 1
            steps[i].status = .pending
            audit(&c, .retryDue, step: step, attempt: attempt, detail: paused ? "retry due; saga paused" : steps[i].isPaused ? "retry due; step paused" : "retry due")
            dispatchReady(&c)
        case .compensationTimeout(let step, let attempt):
            guard let i = index(step, &c) else { return }
            guard steps[i].status == .compensating, Int(steps[i].compensationAttempt) == attempt, c.at >= steps[i].due else { return ignore(&c, "timer \(key.id(sagaId: sagaId)) is stale") }
            seq &+= 1
            audit(&c, .compensationFailed, step: step, attempt: attempt, detail: HubErrorCode.timeout)
            compensationFailure(i, code: HubErrorCode.timeout, message: "no answer", &c)
        case .compensationBackoff(let step, let attempt):
            guard let i = index(step, &c) else { return }
            guard steps[i].status == .compensationBackoff, Int(steps[i].compensationAttempt) == attempt, c.at >= steps[i].due else { return ignore(&c, "timer \(key.id(sagaId: sagaId)) is stale") }
            seq &+= 1
            // Back to "done, not yet undone" (completed or unconfirmed): continueAbort picks it up (unless paused).
            steps[i].status = .succeeded
            audit(&c, .retryDue, step: step, attempt: attempt, detail: "compensation retry due")
            continueAbort(&c)
        case .waitElapsed(let step, let attempt):
            guard let i = index(step, &c) else { return }
            guard c.b.steps[i].isWait, steps[i].status == .running, Int(steps[i].attempt) == attempt, c.at >= steps[i].due else {
                return ignore(&c, "timer \(key.id(sagaId: sagaId)) is stale")
            }
            seq &+= 1
            steps[i].status = .succeeded
            steps[i].lastError = nil
            completionOrder.append(UInt16(i))
            audit(&c, .waitElapsed, step: step, attempt: attempt, detail: "period ended " + c.calendar.localText(steps[i].due))
            progress(&c)
        case .slaAtRisk:
            guard !slaAtRisk, c.at >= atRiskAt else { return ignore(&c, "SLA at-risk timer is stale") }
            seq &+= 1
            slaAtRisk = true
            audit(&c, .slaAtRisk, detail: "deadline " + deadline.description)
        case .slaBreach:
            guard !slaBreached, c.at >= deadline else { return ignore(&c, "SLA breach timer is stale") }
            seq &+= 1
            slaBreached = true
            slaAtRisk = true
            audit(&c, .slaBreached, detail: "deadline " + deadline.description)
        }
    }

    private mutating func operatorCommand(_ cmd: OperatorCommand, _ c: inout Context) {
        let forward = status == .running || status == .manual
        func reject(_ me: inout SagaState, _ why: String) {
            // Recorded (not ignored) so that a redelivery later, when it might apply, stays a no-op.
            me.seq &+= 1
            me.remember(cmd.id)
            me.audit(&c, .commandRejected, by: cmd.by, detail: "command \(cmd.id): " + why)
        }
        switch cmd.action {
        case .retry(let step, let corrected):
            guard let i = index(step, &c) else { return }
            let st = steps[i].status
            if forward, st == .failed || st == .backoff || st == .waitingSupplement {
                seq &+= 1
                remember(cmd.id)
                if st == .backoff { c.out.append(.cancelTimer(timer(.retryBackoff(step: step, attempt: Int(steps[i].attempt)), steps[i].due))) }
                if let corrected { setOverride(i, corrected) }
                else if st != .backoff { bumpRevision(i) }
                steps[i].status = .pending
                steps[i].missing = []
                closeCase(step)
                audit(&c, .stepRetried, step: step, by: cmd.by, detail: corrected.map { "corrected: " + $0.keys.sorted().joined(separator: ", ") })
                dispatchReady(&c)
            } else if status == .compensating, st == .compensationFailed || st == .compensationBackoff {
                seq &+= 1
                remember(cmd.id)
                if st == .compensationBackoff {
                    c.out.append(.cancelTimer(timer(.compensationBackoff(step: step, attempt: Int(steps[i].compensationAttempt)), steps[i].due)))
                }
                steps[i].status = .succeeded
                steps[i].failures = 0
                closeCase(step)
                audit(&c, .stepRetried, step: step, by: cmd.by, detail: "compensation")
                continueAbort(&c)
            } else { reject(&self, "\(step) is \(st.rawValue)") }

        case .skip(let step, let reason):
            guard let i = index(step, &c) else { return }
            let st = steps[i].status
            guard forward, st == .pending || st == .failed || st == .backoff || st == .waitingSupplement else {
                return reject(&self, "\(step) is \(st.rawValue); only pending, failed, backing-off or waiting steps can be skipped")
            }
            seq &+= 1
            remember(cmd.id)
            if st == .backoff { c.out.append(.cancelTimer(timer(.retryBackoff(step: step, attempt: Int(steps[i].attempt)), steps[i].due))) }
            steps[i].status = .skipped
            steps[i].missing = []
            closeCase(step)
            audit(&c, .stepSkipped, step: step, by: cmd.by, detail: reason)
            progress(&c)

        case .cancel(let reason):
            guard forward else { return reject(&self, "saga is \(status.rawValue)") }
            seq &+= 1
            remember(cmd.id)
            audit(&c, .cancelRequested, by: cmd.by, detail: reason)
            beginAbort(.cancel, &c)

        case .pause(let reason):
            guard !paused else { return reject(&self, "already paused") }
            seq &+= 1
            remember(cmd.id)
            paused = true
            audit(&c, .paused, by: cmd.by, detail: reason)

        case .resume:
            guard paused else { return reject(&self, "not paused") }
            seq &+= 1
            remember(cmd.id)
            paused = false
            audit(&c, .resumed, by: cmd.by)
            progress(&c)

        case .pauseStep(let step, let reason):
            guard let i = index(step, &c) else { return }
            guard forward else { return reject(&self, "saga is \(status.rawValue)") }
            guard !steps[i].isPaused else { return reject(&self, "\(step) is already paused") }
            guard !steps[i].status.isDone else { return reject(&self, "\(step) is \(steps[i].status.rawValue); nothing to hold") }
            seq &+= 1
            remember(cmd.id)
            steps[i].paused = true
            audit(&c, .paused, step: step, by: cmd.by, detail: reason)

        case .resumeStep(let step):
            guard let i = index(step, &c) else { return }
            guard steps[i].isPaused else { return reject(&self, "\(step) is not paused") }
            seq &+= 1
            remember(cmd.id)
            steps[i].paused = nil
            audit(&c, .resumed, step: step, by: cmd.by)
            progress(&c)

        case .resolveManually(let step, let outputs, let note):
            guard let i = index(step, &c) else { return }
            let st = steps[i].status
            if forward, st == .failed {
                seq &+= 1
                remember(cmd.id)
                let cs = c.b.steps[i]
                steps[i].status = .succeeded
                steps[i].outputs = cs.retainedOutputs.map { outputs[$0] ?? .null }
                completionOrder.append(UInt16(i))
                closeCase(step)
                audit(&c, .stepResolvedManually, step: step, by: cmd.by, detail: note)
                if let type = cs.issuesLicence, !outputs.isEmpty {
                    c.out.append(.licenceIssued(LicenceIssued(sagaId: sagaId, step: step, type: type, data: outputs)))
                }
                progress(&c)
            } else if status == .compensating, st == .compensationFailed {
                seq &+= 1
                remember(cmd.id)
                steps[i].status = .compensated
                closeCase(step)
                audit(&c, .stepResolvedManually, step: step, by: cmd.by, detail: note)
                continueAbort(&c)
            } else { reject(&self, "\(step) is \(st.rawValue); nothing to resolve") }
        }
    }

    // MARK: - scheduling

    /// Dispatches every pending step whose predecessors are all done, unless the saga or the step
    /// is paused or the saga is aborting.
    private mutating func dispatchReady(_ c: inout Context) {
        guard status == .running || status == .manual, !paused else { return }
        let b = c.b
        for i in steps.indices where steps[i].status == .pending && !steps[i].isPaused {
            var ready = true
            for k in b.predecessorStart[i]..<b.predecessorStart[i + 1] where !steps[b.predecessorIndices[k]].status.isDone { ready = false; break }
            if ready { dispatch(i, &c) }
        }
    }

    private mutating func dispatch(_ i: Int, _ c: inout Context) {
        let st = c.b.steps[i]
        if let wait = st.wait { return startWait(i, wait, &c) }
        steps[i].attempt &+= 1
        steps[i].status = .running
        steps[i].due = c.calendar.addWorkingTime(c.at, st.timeoutMs)
        noteCalendar(c.at, steps[i].due, c.calendar)
        let attempt = Int(steps[i].attempt)
        c.out.append(.dispatch(StepCommand(
            kind: .forward, sagaId: sagaId, step: st.id, attempt: attempt, agency: st.agency, action: st.action,
            payload: c.b.payload(i, external, steps), revision: Int(steps[i].revision), deadline: steps[i].due)))
        c.out.append(.scheduleTimer(timer(.stepTimeout(step: st.id, attempt: attempt), steps[i].due)))
        audit(&c, .stepDispatched, step: st.id, attempt: attempt)
    }

    /// A wait step starts its period: no request goes out; the `waitElapsed` timer ends it
    /// (natural days: wall time from `at`; working days: working time on the calendar).
    private mutating func startWait(_ i: Int, _ wait: (ms: Int64, working: Bool), _ c: inout Context) {
        let st = c.b.steps[i]
        steps[i].attempt &+= 1
        steps[i].status = .running
        if wait.working {
            steps[i].due = c.calendar.addWorkingTime(c.at, wait.ms)
            noteCalendar(c.at, steps[i].due, c.calendar)
        } else {
            steps[i].due = c.at + wait.ms
        }
        let attempt = Int(steps[i].attempt)
        c.out.append(.scheduleTimer(timer(.waitElapsed(step: st.id, attempt: attempt), steps[i].due)))
        let length = wait.working ? "\(wait.ms / c.calendar.workingMsPerDay) working days" : "\(wait.ms / 86_400_000) natural days"
        audit(&c, .waitStarted, step: st.id, attempt: attempt, detail: "\(length), ends \(c.calendar.localText(steps[i].due))")
    }

    /// After a step finished (or was skipped/resolved): move forward, or keep undoing.
    private mutating func progress(_ c: inout Context) {
        if status == .compensating { return continueAbort(&c) }
        dispatchReady(&c)
        guard status == .running else { return }
        // Indexing reads only `status`; `allSatisfy` copied (retained and released) each StepState.
        for i in steps.indices where !steps[i].status.isDone { return }
        finish(.completed, &c)
    }

    private mutating func technicalFailure(_ i: Int, code: String, message: String, _ c: inout Context) {
        let st = c.b.steps[i]
        steps[i].failures &+= 1
        steps[i].lastError = code
        if status != .compensating, st.retryable.contains(code), Int(steps[i].failures) < st.attempts {
            let attempt = Int(steps[i].attempt)
            let delay = SagaEngine.backoff(step: st, sagaId: sagaId, attempt: attempt, failures: Int(steps[i].failures))
            steps[i].status = .backoff
            steps[i].due = c.at + delay
            c.out.append(.scheduleTimer(timer(.retryBackoff(step: st.id, attempt: attempt), steps[i].due)))
            audit(&c, .retryScheduled, step: st.id, attempt: attempt, detail: "in " + DurationText.format(delay))
        } else {
            failFinally(i, code: code, reason: message, &c)
        }
    }

    /// The step has failed for good: apply its `onFailure` policy.
    private mutating func failFinally(_ i: Int, code: String, reason: String, _ c: inout Context) {
        steps[i].status = .failed
        if status == .compensating { return continueAbort(&c) }
        let st = c.b.steps[i]
        switch st.onFailure {
        case .fail:
            // Confirmed successes stay; but a request still out, or one that timed out, may have
            // acted: wait for the former and undo every unconfirmed compensable step first.
            let loose = steps.indices.contains { j in
                c.b.steps[j].compensationAction != nil && (steps[j].status == .running || steps[j].isUnconfirmed)
            }
            if loose { beginAbort(.fail, &c) } else { finish(.failed, &c) }
        case .compensate:
            beginAbort(.failure, &c)
        case .manual:
            let mc = ManualCase(step: st.id, kind: .forward, code: code, reason: reason, openedAt: c.at)
            manualCases.append(mc)
            status = .manual
            audit(&c, .manualCaseOpened, step: st.id, attempt: Int(steps[i].attempt), detail: code + ": " + reason)
            c.out.append(.manualCaseOpened(sagaId: sagaId, mc))
        }
    }

    private mutating func beginAbort(_ cause: AbortCause, _ c: inout Context) {
        status = .compensating
        abortedBy = cause
        manualCases.removeAll { $0.kind == .forward }
        for i in steps.indices {
            switch steps[i].status {
            case .pending, .waitingSupplement:
                steps[i].status = .cancelled
            case .backoff:
                c.out.append(.cancelTimer(timer(.retryBackoff(step: c.b.steps[i].id, attempt: Int(steps[i].attempt)), steps[i].due)))
                steps[i].status = .cancelled
            case .running where c.b.steps[i].isWait:
                // A notice period has nothing in flight to wait for: it just stops.
                c.out.append(.cancelTimer(timer(.waitElapsed(step: c.b.steps[i].id, attempt: Int(steps[i].attempt)), steps[i].due)))
                steps[i].status = .cancelled
            default: break
            }
        }
        audit(&c, .compensationStarted, detail: cause.rawValue)
        continueAbort(&c)
    }

    /// Undo one step at a time, newest completion first; wait while anything is still in flight,
    /// so a late success is undone too and the order stays strictly reversed.
    private mutating func continueAbort(_ c: inout Context) {
        guard status == .compensating, !paused else { return }
        for s in steps {
            switch s.status {
            case .running, .compensating, .compensationBackoff, .compensationFailed: return
            default: continue
            }
        }
        // Unconfirmed steps first (their requests are the newest; nothing depends on them), in
        // reverse step order; then completed steps in reverse completion order.
        for i in steps.indices.reversed() where !completionOrder.contains(UInt16(i)) && needsUndo(i, &c) { return dispatchCompensation(i, &c) }
        for idx in completionOrder.reversed() {
            let i = Int(idx)
            if steps[i].status == .succeeded, needsUndo(i, &c) { return dispatchCompensation(i, &c) }
        }
        switch abortedBy {
        case .cancel: finish(.cancelled, &c)
        case .fail: finish(.failed, &c)
        case .failure, nil: finish(.compensated, &c)
        }
    }

    /// Whether step `i` still has to be undone in this abort: its action is compensable and it
    /// completed (kept instead under `fail`), or its outcome is unknown or a late success showed
    /// it acted (`unconfirmed`) and it has not been undone yet.
    private func needsUndo(_ i: Int, _ c: inout Context) -> Bool {
        guard c.b.steps[i].compensationAction != nil else { return false }
        switch steps[i].status {
        case .succeeded: return abortedBy != .fail || steps[i].isUnconfirmed
        // Skipped by an operator after a timeout: "done without outputs", yet it may have acted.
        case .failed, .cancelled, .skipped: return steps[i].isUnconfirmed
        default: return false
        }
    }

    /// A success for a step the saga gave up on: it timed out and has not been undone; the saga
    /// is aborting or ended failed, compensated or cancelled. Any attempt
    /// up to the last one counts (the answer may be to an earlier revision's request).
    private func lateSuccessApplies(_ i: Int, _ attempt: Int, _ c: inout Context) -> Bool {
        guard status == .compensating || (status.isFinal && status != .completed) else { return false }
        guard c.b.steps[i].compensationAction != nil, steps[i].compensationAttempt == 0 else { return false }
        guard steps[i].status == .failed || steps[i].status == .cancelled || steps[i].status == .skipped else { return false }
        // Only a step whose outcome was unknown: a request that timed out (states written before
        // `unconfirmed` existed say so in `lastError`). A rejected step cannot have acted.
        guard steps[i].isUnconfirmed || steps[i].lastError == HubErrorCode.timeout else { return false }
        return attempt >= 1 && attempt <= Int(steps[i].attempt)
    }

    /// The agency did act: keep the outputs (the compensation reads them) and undo the step. A
    /// saga that had already ended reopens (`compensating`) and ends again with the same status
    /// once the step is undone.
    private mutating func lateSuccess(_ i: Int, _ attempt: Int, _ outputs: [String: JSONValue], _ c: inout Context) {
        seq &+= 1
        let st = c.b.steps[i]
        steps[i].status = .succeeded
        steps[i].outputs = st.retain(outputs)
        steps[i].unconfirmed = true
        audit(&c, .lateSuccess, step: st.id, attempt: attempt, detail: "saga is \(status.rawValue); \(st.id) will be undone")
        if status.isFinal {
            abortedBy = status == .cancelled ? .cancel : status == .failed ? .fail : .failure
            status = .compensating
            audit(&c, .compensationStarted, step: st.id, detail: "late success of \(st.id)")
        }
        continueAbort(&c)
    }

    private mutating func dispatchCompensation(_ i: Int, _ c: inout Context) {
        let st = c.b.steps[i]
        if steps[i].compensationAttempt == 0 { steps[i].failures = 0 }
        steps[i].compensationAttempt &+= 1
        steps[i].status = .compensating
        steps[i].due = c.calendar.addWorkingTime(c.at, st.timeoutMs)
        noteCalendar(c.at, steps[i].due, c.calendar)
        let attempt = Int(steps[i].compensationAttempt)
        c.out.append(.compensate(StepCommand(
            kind: .compensation, sagaId: sagaId, step: st.id, attempt: attempt, agency: st.agency, action: st.compensationAction ?? "",
            payload: c.b.compensationPayload(i, steps), revision: Int(steps[i].revision), deadline: steps[i].due)))
        c.out.append(.scheduleTimer(timer(.compensationTimeout(step: st.id, attempt: attempt), steps[i].due)))
        audit(&c, .compensationDispatched, step: st.id, attempt: attempt)
    }

    private mutating func compensationFailure(_ i: Int, code: String, message: String, _ c: inout Context) {
        let st = c.b.steps[i]
        steps[i].failures &+= 1
        steps[i].lastError = code
        let attempt = Int(steps[i].compensationAttempt)
        if st.retryable.contains(code), Int(steps[i].failures) < st.attempts {
            let delay = SagaEngine.backoff(step: st, sagaId: sagaId, attempt: 10_000 + attempt, failures: Int(steps[i].failures))
            steps[i].status = .compensationBackoff
            steps[i].due = c.at + delay
            c.out.append(.scheduleTimer(timer(.compensationBackoff(step: st.id, attempt: attempt), steps[i].due)))
            audit(&c, .retryScheduled, step: st.id, attempt: attempt, detail: "compensation in " + DurationText.format(delay))
        } else {
            steps[i].status = .compensationFailed
            let mc = ManualCase(step: st.id, kind: .compensation, code: code, reason: message, openedAt: c.at)
            manualCases.append(mc)
            audit(&c, .manualCaseOpened, step: st.id, attempt: attempt, detail: "compensation " + code + ": " + message)
            c.out.append(.manualCaseOpened(sagaId: sagaId, mc))
        }
    }

    private mutating func finish(_ final: SagaStatus, _ c: inout Context) {
        status = final
        // Disarm every timer still set, so the orchestrator's timer store empties with the saga.
        // By index, not `enumerated()`: that copied every StepState (its arrays, override, error).
        for i in steps.indices {
            switch steps[i].status {
            case .running where c.b.steps[i].isWait:
                c.out.append(.cancelTimer(timer(.waitElapsed(step: c.b.steps[i].id, attempt: Int(steps[i].attempt)), steps[i].due)))
            case .running: c.out.append(.cancelTimer(timer(.stepTimeout(step: c.b.steps[i].id, attempt: Int(steps[i].attempt)), steps[i].due)))
            case .backoff: c.out.append(.cancelTimer(timer(.retryBackoff(step: c.b.steps[i].id, attempt: Int(steps[i].attempt)), steps[i].due)))
            default: break
            }
        }
        if !slaAtRisk { c.out.append(.cancelTimer(timer(.slaAtRisk, atRiskAt))) }
        if !slaBreached { c.out.append(.cancelTimer(timer(.slaBreach, deadline))) }
        manualCases.removeAll()
        audit(&c, .sagaFinished, detail: final.rawValue)
        c.out.append(.finished(sagaId: sagaId, status: final, at: c.at))
    }

    // MARK: - helpers

    private func index(_ step: String, _ c: inout Context) -> Int? {
        if let i = c.b.stepIndex(of: step) { return i }
        ignore(&c, "unknown step \(step)")
        return nil
    }

    /// Only the current attempt's answer counts. An earlier attempt's late answer is dropped: the
    /// retry carries the same request id, so the department answers it from its own record.
    /// Exact matching is what makes every agency event idempotent (attempts only grow).
    /// `known`: the index of `step` when the caller has already looked it up.
    private func answerable(_ step: String, _ attempt: Int, _ c: inout Context, known: Int? = nil) -> Int? {
        guard let i = known ?? index(step, &c) else { return nil }
        guard !c.b.steps[i].isWait else {
            ignore(&c, "\(step) is a wait step; no agency answers for it")
            return nil
        }
        guard steps[i].status == .running, attempt == Int(steps[i].attempt) else {
            ignore(&c, "stale or duplicate answer from \(step) attempt \(attempt)")
            return nil
        }
        return i
    }

    private func compensationAnswerable(_ step: String, _ attempt: Int, _ c: inout Context) -> Int? {
        guard let i = index(step, &c) else { return nil }
        guard steps[i].status == .compensating, Int(steps[i].compensationAttempt) == attempt else {
            ignore(&c, "stale or duplicate compensation answer from \(step) attempt \(attempt)")
            return nil
        }
        return i
    }

    private mutating func cancelStepTimer(_ i: Int, _ c: inout Context) {
        c.out.append(.cancelTimer(timer(.stepTimeout(step: c.b.stepIds[i], attempt: Int(steps[i].attempt)), steps[i].due)))
    }

    /// A new payload: new request id, fresh retry budget, earlier attempts' answers become stale.
    private mutating func bumpRevision(_ i: Int) {
        steps[i].revision &+= 1
        steps[i].failures = 0
    }

    private mutating func setOverride(_ i: Int, _ fields: [String: JSONValue]) {
        var o = steps[i].override ?? [:]
        o.merge(fields) { _, new in new }
        steps[i].override = o
        bumpRevision(i)
        steps[i].status = .pending
    }

    private mutating func closeCase(_ step: String) {
        manualCases.removeAll { $0.step == step }
        if status == .manual, !manualCases.contains(where: { $0.kind == .forward }) { status = .running }
    }

    private mutating func remember(_ id: String) {
        recentCommands.append(id)
        if recentCommands.count > 32 { recentCommands.removeFirst() }
    }

    private func timer(_ key: TimerKey, _ due: Instant) -> TimerCommand { TimerCommand(sagaId: sagaId, key: key, due: due) }

    private func ignore(_ c: inout Context, _ why: String) {
        c.out.append(.audit(AuditEvent(sagaId: sagaId, seq: seq, at: c.at, kind: .inputIgnored, detail: why)))
    }

    private func audit(_ c: inout Context, _ kind: AuditEvent.Kind, step: String? = nil, attempt: Int? = nil, by: String? = nil, detail: String? = nil) {
        c.out.append(.audit(AuditEvent(sagaId: sagaId, seq: seq, at: c.at, kind: kind, step: step, attempt: attempt, by: by, detail: detail)))
    }
}
