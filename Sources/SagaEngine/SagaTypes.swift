/// Lifecycle of a saga. `completed`, `failed`, `compensated` and `cancelled` are final.
public enum SagaStatus: String, Codable, Sendable, CaseIterable {
    /// Created for a bundle version, waiting for the `submit` input.
    case new
    case running
    /// At least one 办不成事 case is open on a forward step; independent branches go on.
    case manual
    /// Undoing completed compensable steps one at a time, newest first.
    case compensating
    case completed
    /// A step failed under `onFailure: fail`; confirmed successes are kept, unconfirmed steps
    /// (timed out, outcome unknown) were undone.
    case failed
    /// A step failed under `onFailure: compensate` and every undo is done.
    case compensated
    /// An operator cancelled; every undo is done.
    case cancelled

    public var isFinal: Bool { self == .completed || self == .failed || self == .compensated || self == .cancelled }
}

public enum StepStatus: String, Codable, Sendable, CaseIterable {
    /// Not dispatched (predecessors unfinished, saga paused, or a retry is due).
    case pending
    /// A request is out at the agency; `attempt` identifies it.
    case running
    /// Failed technically; a retry timer is set.
    case backoff
    /// 容缺: the agency needs materials; this branch waits, others go on.
    case waitingSupplement
    case succeeded
    /// Skipped by an operator (with a reason); counts as done for successors.
    case skipped
    /// Failed for good (business rejection, non-retryable error, retries exhausted).
    case failed
    /// Never ran: the saga aborted first.
    case cancelled
    /// Its compensation is out at the agency.
    case compensating
    /// Its compensation failed technically; a retry timer is set.
    case compensationBackoff
    /// Its compensation failed for good; a manual case is open.
    case compensationFailed
    case compensated

    /// Successors may start.
    public var isDone: Bool { self == .succeeded || self == .skipped }
}

/// Per-step state. Kept small: every in-flight saga carries one per step.
public struct StepState: Codable, Equatable, Sendable {
    public var status: StepStatus = .pending
    /// Dispatch number of the current or last forward request (1-based; 0 = never dispatched).
    public var attempt: UInt16 = 0
    /// Bumped when the payload changes (operator correction, supplement); part of the request id.
    public var revision: UInt16 = 0
    /// Technical failures in the current revision (or of the compensation), against `retry.attempts`.
    public var failures: UInt16 = 0
    public var compensationAttempt: UInt16 = 0
    /// Due instant of this step's armed timer (timeout or backoff), for rejecting early firings.
    public var due: Instant = Instant(ms: 0)
    /// Retained outputs, aligned with `CompiledStep.retainedOutputs`.
    public var outputs: [JSONValue] = []
    /// Materials the agency asked for (容缺).
    public var missing: [String] = []
    /// Operator corrections and supplied materials merged over the mapped payload.
    public var override: [String: JSONValue]?
    public var lastError: String?
    /// Held by an operator (`pauseStep`); nil when not (optional, so states written before the
    /// field existed still decode).
    public var paused: Bool?
    public var isPaused: Bool { paused == true }
    /// The agency may have acted on this step although the saga never accepted a success: a
    /// forward request ended by timeout (its outcome is unknown, not failed), or a success came
    /// after the saga gave up on the step. Set by a step timeout or a late success, cleared only
    /// by an accepted success. When the saga aborts or fails, such a step is undone like a
    /// completed one (if its action is compensable). Optional, so older states still decode.
    public var unconfirmed: Bool?
    public var isUnconfirmed: Bool { unconfirmed == true }
}

/// A 办不成事 case: a step a human has to sort out.
public struct ManualCase: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case forward, compensation }
    public var step: String
    public var kind: Kind
    public var code: String?
    public var reason: String
    public var openedAt: Instant
}

/// Everything the engine knows about one saga. Codable for the compacted `saga-state` topic;
/// Equatable so replays can be checked byte for byte.
public struct SagaState: Codable, Equatable, Sendable {
    public var sagaId: String
    public var bundleId: String
    public var bundleVersion: Int
    public var status: SagaStatus = .new
    public var paused: Bool = false
    /// Accepted transitions so far; ignored inputs do not count.
    public var seq: UInt32 = 0
    public var submittedAt: Instant = Instant(ms: 0)
    public var atRiskAt: Instant = Instant(ms: 0)
    public var deadline: Instant = Instant(ms: 0)
    public var slaAtRisk: Bool = false
    public var slaBreached: Bool = false
    /// Why the saga is compensating (and so which final status it ends in).
    public var abortedBy: AbortCause?
    /// Form and licence values the mappings read, aligned with `CompiledBundle.external`.
    public var external: [JSONValue] = []
    public var steps: [StepState]
    /// Indices of succeeded steps in completion order: compensation walks it backwards.
    public var completionOrder: [UInt16] = []
    public var manualCases: [ManualCase] = []
    /// Ids of the last operator commands applied, so a redelivered command is a no-op.
    public var recentCommands: [String] = []
    /// `CompiledBundle.fingerprint` of the definition this saga started on: steps are matched
    /// by position, so the orchestrator refuses to run the saga on a different definition of the
    /// same version. Nil in states written before the field existed (not checkable).
    public var definitionFingerprint: String?
    /// Years a deadline or timeout of this saga reaches that its calendar does not cover (those
    /// instants count weekends only and are flagged, not trusted); nil when none.
    public var calendarNotCovered: [Int]?
    /// Provisional calendar years its deadlines reach; nil when none.
    public var calendarProvisional: [Int]?
    /// 统一出件: the numbers and licences each step issued, by step id then output name (e.g.
    /// `registration` → `uscc`, `licenceId`), bank accounts already masked. Written by the
    /// orchestrator layer (`IssuedNumbers`), never read by the engine; nil before any was issued
    /// and in states written before the field existed.
    public var issued: [String: [String: JSONValue]]?
    /// The last link of the saga's audit chain on `saga-events` (see `AuditChain`), set by the
    /// orchestrator as it writes the records; nil before the first chained record and in states
    /// written before the chain existed (optional, so those still decode).
    public var auditChain: AuditChainHead?

    /// `failure`: a step failed under `onFailure: compensate` (ends `compensated`); `cancel`: an
    /// operator cancelled (ends `cancelled`); `fail`: a step failed under `onFailure: fail` (ends
    /// `failed`): only unconfirmed steps are undone, confirmed successes are kept.
    public enum AbortCause: String, Codable, Sendable { case failure, cancel, fail }

    /// A fresh saga for `bundle`; apply `.submit` next.
    public init(sagaId: String, bundle: CompiledBundle) {
        self.sagaId = sagaId
        bundleId = bundle.id
        bundleVersion = bundle.version
        definitionFingerprint = bundle.fingerprint
        steps = .filled(StepState(), count: bundle.steps.count)
    }

    /// The saga of an application has the application's id, so that the `applications` record
    /// (keyed by application id) and every saga-keyed record land on the same partition.
    public static func sagaId(applicationId: String) -> String { applicationId }
}

/// One input to the engine. `at` is the only clock the engine sees.
public struct SagaInput: Codable, Equatable, Sendable {
    public var at: Instant
    public var event: SagaEvent
    public init(at: Instant, _ event: SagaEvent) { self.at = at; self.event = event }
}

public enum SagaEvent: Codable, Equatable, Sendable {
    /// The application (一表申请) and e-licences already held by the applicant (免证办), by type.
    case submit(form: JSONValue, licences: [String: JSONValue])
    case stepSucceeded(step: String, attempt: Int, outputs: [String: JSONValue])
    /// Business rejection: not retried; the step's `onFailure` applies.
    case stepRejected(step: String, attempt: Int, code: String, reason: String, field: String?)
    /// Technical failure: retried when the code is retryable and tries remain.
    case stepFailed(step: String, attempt: Int, code: String, message: String)
    /// 容缺: the agency needs these materials before it can finish.
    case supplementNeeded(step: String, attempt: Int, materials: [String])
    /// The applicant supplied materials asked for by `attempt`; the step is dispatched again.
    /// `by`: the operator who entered them (`yishi sagas supplement`), nil when they came
    /// through the front desk; recorded in the audit event so that operator supplements are
    /// operator actions. Records without `by` (older ones, the front desk's) decode with nil.
    case supplementProvided(step: String, attempt: Int, materials: [String: JSONValue], by: String? = nil)
    case compensationSucceeded(step: String, attempt: Int)
    case compensationFailed(step: String, attempt: Int, code: String, message: String)
    case timerFired(TimerKey)
    case operatorCommand(OperatorCommand)
    /// An objection to a public notice (e.g. a creditor's, during 简易注销's 20-day notice) against
    /// the wait step `step` while it runs: the wait stops and the step fails with `OBJECTION`
    /// (its `onFailure`, `manual` for wait steps, opens a 办不成事 case). `by`: who objected.
    case objection(step: String, by: String, reason: String)
}

/// An operator's request. `id` makes redelivery harmless; `by` is the operator identity for the audit trail.
public struct OperatorCommand: Codable, Equatable, Sendable {
    public var id: String
    public var by: String
    public var action: Action
    public init(id: String, by: String, _ action: Action) { self.id = id; self.by = by; self.action = action }

    public enum Action: Codable, Equatable, Sendable {
        /// Re-run a failed, backing-off or supplement-waiting step now, optionally with corrected
        /// payload fields; on a step whose compensation failed, retry the compensation.
        case retry(step: String, correctedInput: [String: JSONValue]?)
        /// Treat a not-yet-running or failed step as done without outputs.
        case skip(step: String, reason: String)
        /// Abort: compensate what completed, end `cancelled`.
        case cancel(reason: String)
        /// Stop dispatching (in-flight requests still land).
        case pause(reason: String)
        case resume
        /// Hold one step: it is not dispatched (nor re-dispatched after a backoff) until
        /// `resumeStep`; the rest of the saga goes on, and an answer already out still lands.
        case pauseStep(step: String, reason: String)
        case resumeStep(step: String)
        /// The 办不成事 window finished a failed step by hand (with its outputs), or undid a step
        /// whose compensation failed.
        case resolveManually(step: String, outputs: [String: JSONValue], note: String)
    }
}

/// The timers a saga sets. The id is deterministic, so a re-scheduled timer replaces itself.
public enum TimerKey: Codable, Equatable, Hashable, Sendable {
    case stepTimeout(step: String, attempt: Int)
    case retryBackoff(step: String, attempt: Int)
    case compensationTimeout(step: String, attempt: Int)
    case compensationBackoff(step: String, attempt: Int)
    case slaAtRisk
    case slaBreach
    /// A wait step's period (e.g. a 20-natural-day public notice) ends: the step succeeds.
    case waitElapsed(step: String, attempt: Int)

    public func id(sagaId: String) -> String {
        switch self {
        case .stepTimeout(let s, let a): return "\(sagaId)/timeout/\(s)/\(a)"
        case .retryBackoff(let s, let a): return "\(sagaId)/backoff/\(s)/\(a)"
        case .compensationTimeout(let s, let a): return "\(sagaId)/compensation-timeout/\(s)/\(a)"
        case .compensationBackoff(let s, let a): return "\(sagaId)/compensation-backoff/\(s)/\(a)"
        case .slaAtRisk: return "\(sagaId)/sla-at-risk"
        case .slaBreach: return "\(sagaId)/sla-breach"
        case .waitElapsed(let s, let a): return "\(sagaId)/wait/\(s)/\(a)"
        }
    }
}

/// A request to an agency (forward action or compensation).
public struct StepCommand: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case forward, compensation }
    public var kind: Kind
    public var sagaId: String
    public var step: String
    public var attempt: Int
    public var agency: String
    public var action: String
    public var payload: [String: JSONValue]
    /// Payload revision (forward requests): bumped by operator corrections and supplements only.
    public var revision: Int
    /// When the hub stops waiting (the timeout timer's due instant).
    public var deadline: Instant

    /// Idempotency key for the department: `<saga>/<step>/r<revision>` forward, `<saga>/<step>/undo`
    /// for compensation. Retries of an unchanged request reuse it, so a department that already
    /// acted answers from its record instead of acting twice. Computed (not stored) to keep the
    /// hot path free of string building; send it as a header.
    public var requestId: String {
        kind == .compensation ? sagaId + "/" + step + "/undo" : sagaId + "/" + step + "/r" + String(revision)
    }
}

public struct TimerCommand: Codable, Equatable, Sendable {
    public var sagaId: String
    public var key: TimerKey
    public var due: Instant
    public init(sagaId: String, key: TimerKey, due: Instant) { self.sagaId = sagaId; self.key = key; self.due = due }
    public var id: String { key.id(sagaId: sagaId) }
}

public struct AuditEvent: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// `retryScheduled`: a failed attempt (or compensation) will be retried after a backoff
        /// (detail `in 30s`); `retryDue`: that backoff has elapsed and the retry is dispatched now
        /// (or waits for a pause to end). Records written before `retryDue` existed carry
        /// `retryScheduled` with detail `retry due…` for the second; they still decode.
        case submitted, stepDispatched, stepSucceeded, stepRejected, stepFailed, stepTimedOut, retryScheduled, retryDue
        case supplementRequested, supplementProvided, stepRetried, stepSkipped, stepResolvedManually
        case manualCaseOpened, paused, resumed, cancelRequested, compensationStarted, compensationDispatched
        case compensationSucceeded, compensationFailed, slaAtRisk, slaBreached, sagaFinished
        /// A success for a step the saga had already given up on (timed out, or the saga was
        /// aborting or had ended): the effect exists, so the step is undone.
        case lateSuccess
        /// An operator command that does not apply now; recorded so its redelivery stays a no-op.
        case commandRejected
        /// A duplicate, stale or unknown input; the state did not change.
        case inputIgnored
        /// A wait step started its period (detail: length and end); `waitElapsed`: it ended.
        case waitStarted, waitElapsed
        /// An objection arrived during a wait step's period (detail: who and why).
        case objectionReceived
    }
    public var sagaId: String
    /// The saga's `seq` after the transition (for `inputIgnored`: unchanged).
    public var seq: UInt32
    public var at: Instant
    public var kind: Kind
    public var step: String?
    public var attempt: Int?
    /// Operator identity for operator actions.
    public var by: String?
    /// Error code, reason, materials, …: whatever explains this event.
    public var detail: String?
}

public struct LicenceIssued: Codable, Equatable, Sendable {
    public var sagaId: String
    public var step: String
    public var type: String
    /// The step's outputs (e.g. USCC, licence id): stored on the `licences` topic for 免证办.
    public var data: [String: JSONValue]
}

public enum SagaOutput: Codable, Equatable, Sendable {
    case dispatch(StepCommand)
    case compensate(StepCommand)
    case scheduleTimer(TimerCommand)
    case cancelTimer(TimerCommand)
    case audit(AuditEvent)
    case licenceIssued(LicenceIssued)
    case manualCaseOpened(sagaId: String, ManualCase)
    case finished(sagaId: String, status: SagaStatus, at: Instant)
}

extension SagaState {
    /// Where a saga's SLA starts: the form's `submittedAt` (RFC 3339, the instant the applicant
    /// handed the application in at the window or portal), but never later than `receivedAt`,
    /// the hub's own instant when it first acted on the application. A form without a readable
    /// `submittedAt` starts at `receivedAt`. So a dead letter replayed days later keeps its SLA
    /// start, and a sender whose clock runs ahead cannot push the deadline out.
    public static func slaStart(form: JSONValue, receivedAt: Instant) -> Instant {
        guard let text = form["submittedAt"]?.stringValue, let submitted = Instant(rfc3339: text) else { return receivedAt }
        return min(submitted, receivedAt)
    }
}
