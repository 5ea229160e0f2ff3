import Foundation
import Messaging
import SagaEngine

/// The sagas one orchestrator instance owns, and the work of turning inputs
/// into new states and outbound messages. No Kafka here: the service feeds it
/// decoded inputs and writes what it returns in one transaction.
///
/// Changes made during a batch live in an overlay until `commitBatch`, so an
/// aborted transaction leaves the owned state exactly as it was.
struct SagaHost {
    /// Replaced by a bundle reload (`OrchestratorService.reloadBundles`) between batches only.
    var library: BundleLibrary
    private(set) var sagas: [String: SagaState] = [:]
    private(set) var timers = TimerIndex()

    private var overlay: [String: SagaState] = [:]
    private var timerOps: [(schedule: Bool, TimerCommand)] = []
    var outbound: [Outbound] = []
    /// Finished sagas in the hot state and those that left it (`Retention`).
    var retention = Retention()
    /// The encoded `saga-state` value of each saga changed in this batch (encoded once, when
    /// the input was admitted; the changelog record carries these bytes).
    private(set) var encodedStates: [String: Data] = [:]

    /// When true, every input's new state is encoded and passed to `admit` (the exact, slow
    /// check); when false (the default) `admit` gets nil for the state, the states are encoded
    /// once per saga at the end of the batch (`encodeChangedStates`) and the caller checks them
    /// there, redoing the batch with this set when one is too large.
    var exactStateAdmission = false

    /// Decides whether one input's result may join the batch: given the saga's new encoded
    /// state and the records the input leads to, nil to accept or why not (the orchestrator's
    /// `OutboundGuard`: a record above `message.max.bytes`). A refused input changes nothing.
    var admit: (@Sendable (_ sagaId: String, _ state: Data?, _ outbound: ArraySlice<Outbound>) -> String?)?

    /// The hash function new sagas' audit chains use (`AuditChain`); a saga keeps the one its chain started with.
    var chainAlgorithm: HashAlgorithm = .sm3

    init(library: BundleLibrary) { self.library = library }

    /// What to write: a record for a topic (without prefix), keyed, with its CloudEvents type.
    struct Outbound {
        var topic: String
        var key: String
        var sagaId: String
        var type: String
        var subject: String?
        var step: String?
        var attempt: Int?
        var payload: JSONValue
        /// `payload` as the record's value (its canonical text), encoded once.
        var data: Data
        /// The record's link in its saga's audit chain (`saga-events` records only; see `AuditChain`).
        var chain: ChainLink?

        struct ChainLink: Equatable {
            var algorithm: HashAlgorithm
            var previous: String
            var link: String
            var position: UInt32
        }

        /// `data` defaults to `payload`'s canonical text.
        init(topic: String, key: String, sagaId: String, type: String, subject: String?, step: String?, attempt: Int?,
             payload: JSONValue, data: Data? = nil) {
            self.topic = topic
            self.key = key
            self.sagaId = sagaId
            self.type = type
            self.subject = subject
            self.step = step
            self.attempt = attempt
            self.payload = payload
            self.data = data ?? Data(payload.canonicalBytes())
        }
    }

    enum Rejection: Error, CustomStringConvertible {
        case unknownBundle(String)
        case unknownSaga(String)
        case bundleVersionGone(String, Int)
        /// The input would write a record the producer refuses (see `admit`); nothing changed.
        case tooLarge(String)
        var description: String {
            switch self {
            case .unknownBundle(let id): return "no bundle named '\(id)' is loaded"
            case .unknownSaga(let id): return "no saga '\(id)' on this instance"
            case .bundleVersionGone(let id, let v): return "bundle \(id) v\(v) is no longer loaded"
            case .tooLarge(let why): return why
            }
        }
    }

    // MARK: Reading

    func state(_ sagaId: String) -> SagaState? { overlay[sagaId] ?? sagas[sagaId] }

    /// Whether an input of this batch changed the saga (its new state is not committed yet).
    func changedInBatch(_ sagaId: String) -> Bool { overlay[sagaId] != nil }

    // MARK: Inputs

    /// A new application: starts a saga on the newest version of its bundle.
    /// A repeated application for an existing saga changes nothing (the engine ignores a second submit).
    mutating func submit(sagaId: String, bundleId: String, form: JSONValue, licences: [String: JSONValue], at: Instant) throws {
        let created = state(sagaId) == nil
        if created {
            guard let bundle = library.newest(bundleId) else { throw Rejection.unknownBundle(bundleId) }
            overlay[sagaId] = SagaState(sagaId: sagaId, bundle: bundle)
        }
        do { try apply(sagaId, SagaInput(at: at, .submit(form: form, licences: licences))) } catch {
            if created { overlay[sagaId] = nil }  // a refused application leaves no saga behind
            throw error
        }
        // A finished saga re-submitted within its grace period: the engine recorded `inputIgnored`; say so on `progress`.
        if !created, let saga = state(sagaId), saga.status.isFinal {
            outbound.append(Self.alreadyFinishedProgress(FinishedSummary(saga, finishedAt: retention.finishedInstant(sagaId) ?? at), at: at))
        }
    }

    mutating func apply(_ sagaId: String, _ input: SagaInput) throws {
        guard var saga = state(sagaId) else { throw Rejection.unknownSaga(sagaId) }
        guard let bundle = library.bundle(saga.bundleId, version: saga.bundleVersion),
              let calendar = library.calendar(for: bundle) else {
            throw Rejection.bundleVersionGone(saga.bundleId, saga.bundleVersion)
        }
        let before = saga.seq
        let outputs = SagaEngine.apply(to: &saga, input, bundle: bundle, calendar: calendar)
        let written = outbound.count, scheduled = timerOps.count
        for output in outputs { route(output) }
        if saga.seq != before { outbound += ProgressEvents.map(input, outputs: outputs, saga: &saga, bundle: bundle, calendar: calendar) }
        let chained = chain(&saga, from: written)
        let changed = saga.seq != before || overlay[sagaId] != nil || chained
        // The state is encoded once per saga per batch (`encodeChangedStates`), unless the
        // batch is being redone with a size check of every input's state.
        let encoded = changed && exactStateAdmission ? SagaStateCodec.encode(saga) : nil
        if let admit, let why = admit(sagaId, encoded, outbound[written...]) {
            outbound.removeSubrange(written...)
            timerOps.removeSubrange(scheduled...)
            throw Rejection.tooLarge(why)
        }
        if changed {
            overlay[sagaId] = saga
            encodedStates[sagaId] = encoded
        }
    }

    /// Fires the timers due by `now` (the hub clock), each once and at `now`: a timer that came
    /// due while nothing ran (the orchestrator down, the broker frozen, a rebalance) fires late,
    /// and the retry, timeout or backoff it leads to is measured from the instant the hub acts,
    /// not from the old due instant. The instant is recorded in the audit events and the
    /// new state, so the saga's history stays exact. Popped timers leave the index; an abort
    /// puts them back.
    ///
    /// A timer cannot be refused like a consumed record: one whose result `admit` refuses is
    /// dropped (the saga keeps its state) and listed in `heldTimers`, for the caller to report.
    mutating func fireDueTimers(now: Instant, limit: Int) throws -> Int {
        let due = timers.popDue(now: now, limit: limit)
        firedInBatch += due
        for timer in due where state(timer.sagaId) != nil {
            do { try apply(timer.sagaId, SagaInput(at: max(now, timer.due), .timerFired(timer.key))) } catch Rejection.tooLarge(let why) {
                heldTimers.append((timer, why))
            }
        }
        return due.count
    }
    /// Timers of this batch whose result was refused as too large, and why.
    private(set) var heldTimers: [(timer: TimerCommand, why: String)] = []
    private var firedInBatch: [TimerCommand] = []

    /// Encodes the state of every saga changed in this batch that is not encoded yet (once per
    /// saga per batch, whatever the number of its inputs) and returns all of them, by saga id.
    mutating func encodeChangedStates() -> [String: Data] {
        for (id, saga) in overlay where encodedStates[id] == nil { encodedStates[id] = SagaStateCodec.encode(saga) }
        return encodedStates
    }

    /// Sagas changed in this batch, for the `saga-state` changelog.
    var changedStates: [SagaState] { overlay.keys.sorted().map { overlay[$0]! } }

    /// `lowerBound(sagaId)`: the `saga-state` partition of a saga leaving the hot state and an
    /// offset at or before its summary record (for `FinishedIndex`).
    mutating func commitBatch(lowerBound: (String) -> (partition: Int32, offset: Int64)? = { _ in nil }) {
        for (id, saga) in overlay { sagas[id] = saga }
        for id in retention.evicting { sagas[id] = nil }
        retention.commit(lowerBound: lowerBound)
        for (schedule, timer) in timerOps {
            if schedule { timers.schedule(timer) } else { timers.cancel(timer) }
        }
        clearBatch()
    }

    mutating func abortBatch() {
        for timer in firedInBatch { timers.schedule(timer) }
        retention.abort()
        clearBatch()
    }

    private mutating func clearBatch() {
        overlay.removeAll(keepingCapacity: true)
        timerOps.removeAll(keepingCapacity: true)
        outbound.removeAll(keepingCapacity: true)
        encodedStates.removeAll(keepingCapacity: true)
        heldTimers.removeAll(keepingCapacity: true)
        firedInBatch.removeAll(keepingCapacity: true)
    }

    // MARK: Ownership

    /// Installs restored sagas (`restore(_:)` for each) on both cores: their timers are armed
    /// on a helper thread into a separate index, merged when the sagas are in. Same result as
    /// calling `restore(_:)` in order.
    /// `alongside` runs on the caller's thread while the timers are armed (other restore
    /// bookkeeping that does not touch the host).
    mutating func restore(all states: [SagaState], alongside: () -> Void = {}) {
        let library = self.library
        let armed = Background {
            var timers = TimerIndex()
            timers.reserve(states.count * 6)
            for saga in states {
                guard let bundle = library.bundle(saga.bundleId, version: saga.bundleVersion) else { continue }
                for timer in saga.armedTimers(bundle: bundle) { timers.schedule(timer) }
            }
            return timers
        }
        sagas.reserveCapacity(sagas.count + states.count)
        for saga in states { sagas[saga.sagaId] = saga }
        alongside()
        timers.merge(armed.wait())
    }

    /// Installs a restored saga (from the changelog) and re-arms its timers.
    mutating func restore(_ saga: SagaState) {
        sagas[saga.sagaId] = saga
        guard let bundle = library.bundle(saga.bundleId, version: saga.bundleVersion) else { return }
        for timer in saga.armedTimers(bundle: bundle) { timers.schedule(timer) }
    }

    /// Drops the sagas (and their timers) that `isOwned` no longer accepts.
    mutating func drop(where notOwned: (String) -> Bool) {
        sagas = sagas.filter { !notOwned($0.key) }
        timers.removeAll(where: notOwned)
    }

    // MARK: Outputs

    /// Links the `saga-events` records of `saga` from `outbound[start...]` into its audit chain
    /// (in order), advancing the chain head in its state; true when any was linked. The head is
    /// part of the state in the overlay, so an aborted transaction discards it with the records.
    private mutating func chain(_ saga: inout SagaState, from start: Int) -> Bool {
        var linked = false
        for i in start..<outbound.count where outbound[i].topic == "saga-events" && outbound[i].sagaId == saga.sagaId {
            var head = saga.auditChain ?? .start(sagaId: saga.sagaId, bundleVersion: saga.bundleVersion, algorithm: chainAlgorithm)
            let (previous, link) = head.append(type: outbound[i].type, key: outbound[i].key, value: outbound[i].data)
            outbound[i].chain = Outbound.ChainLink(algorithm: head.algorithm, previous: previous, link: link, position: head.length)
            saga.auditChain = head
            linked = true
        }
        return linked
    }

    /// The chain heads of the sagas whose audit chain advanced in this batch (for `audit-heads`).
    var advancedChains: [(sagaId: String, bundleVersion: Int, head: AuditChainHead)] {
        overlay.keys.sorted().compactMap { id in
            guard let saga = overlay[id], let head = saga.auditChain, head != sagas[id]?.auditChain else { return nil }
            return (id, saga.bundleVersion, head)
        }
    }

    private mutating func route(_ output: SagaOutput) {
        switch output {
        case .dispatch(let command):
            emit("commands.\(command.agency)", command.sagaId, MessageType.stepRequested, OutboundPayload.command(command), step: command.step, attempt: command.attempt)
        case .compensate(let command):
            emit("commands.\(command.agency)", command.sagaId, MessageType.compensationRequested, OutboundPayload.command(command), step: command.step, attempt: command.attempt)
        case .scheduleTimer(let timer):
            timerOps.append((true, timer))
        case .cancelTimer(let timer):
            timerOps.append((false, timer))
        case .audit(let event):
            emit("saga-events", event.sagaId, MessageType.sagaAudit(event.kind.rawValue), OutboundPayload.audit(event), step: event.step, attempt: event.attempt)
        case .licenceIssued(let licence):
            let holder = licence.data["uscc"]?.stringValue ?? licence.sagaId
            emit("licences", "\(holder)/\(licence.type)", MessageType.licenceIssued, OutboundPayload.licence(licence), step: licence.step, attempt: nil,
                 sagaId: licence.sagaId)
        case .manualCaseOpened(let sagaId, let manualCase):
            emit("saga-events", sagaId, MessageType.manualCaseOpened, OutboundPayload.manualCase(manualCase), step: manualCase.step, attempt: nil)
        case .finished(let sagaId, let status, let at):
            retention.finished(sagaId, at: at)
            emit("saga-events", sagaId, MessageType.sagaFinished,
                 JSONValue.object(["sagaId": .string(sagaId), "status": .string(status.rawValue), "at": .string(at.description)]),
                 step: nil, attempt: nil)
        }
    }

    /// Queues one record; its payload is built directly (`OutboundPayload`) and written as canonical text once.
    private mutating func emit(_ topic: String, _ key: String, _ type: String, _ payload: JSONValue, step: String?, attempt: Int?,
                               sagaId: String? = nil) {
        let sagaId = sagaId ?? key
        outbound.append(Outbound(topic: topic, key: key, sagaId: sagaId, type: type, subject: sagaId, step: step, attempt: attempt,
                                 payload: payload))
    }
}

/// A step command as it travels: the engine's `StepCommand` plus its request id
/// (a computed property there, so not part of its own encoding).
struct CommandMessage: Encodable {
    let command: StepCommand
    init(_ command: StepCommand) { self.command = command }
    enum Keys: String, CodingKey { case requestId }
    func encode(to encoder: any Encoder) throws {
        try command.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(command.requestId, forKey: .requestId)
    }
}

extension SagaState {
    /// The timers this state has armed; the engine rejects stale firings, so
    /// re-arming from a restored state is always safe.
    public func armedTimers(bundle: CompiledBundle) -> [TimerCommand] {
        guard !status.isFinal, status != .new else { return [] }
        var timers: [TimerCommand] = []
        for (i, step) in steps.enumerated() where i < bundle.steps.count {
            let id = bundle.steps[i].id
            let key: TimerKey?
            switch step.status {
            case .running: key = bundle.steps[i].isWait ? .waitElapsed(step: id, attempt: Int(step.attempt))
                                                         : .stepTimeout(step: id, attempt: Int(step.attempt))
            case .backoff: key = .retryBackoff(step: id, attempt: Int(step.attempt))
            case .compensating: key = .compensationTimeout(step: id, attempt: Int(step.compensationAttempt))
            case .compensationBackoff: key = .compensationBackoff(step: id, attempt: Int(step.compensationAttempt))
            default: key = nil
            }
            if let key { timers.append(TimerCommand(sagaId: sagaId, key: key, due: step.due)) }
        }
        if !slaAtRisk { timers.append(TimerCommand(sagaId: sagaId, key: .slaAtRisk, due: atRiskAt)) }
        if !slaBreached { timers.append(TimerCommand(sagaId: sagaId, key: .slaBreach, due: deadline)) }
        return timers
    }
}

extension JSONValue {
    /// Any Encodable as a JSON value (through JSONEncoder; outputs are small).
    static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        if let json = value as? JSONValue { return json }
        return try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }
}
