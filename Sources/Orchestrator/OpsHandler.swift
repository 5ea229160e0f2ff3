import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// An operator request from the `ops` topic (request/reply; `requestId` correlates).
///
/// With `sagaId` it addresses one saga (keyed by saga id, so the owner of its partition answers).
/// Without `sagaId` but with a `filter`, an action (`retry`, `skip`, …) is a bulk action: it is
/// sent to every partition and each owner applies it to its matching sagas, one engine command
/// per saga, and replies with the affected ids and the per-saga refusals. `dryRun` evaluates
/// the command on a copy of each state and changes nothing.
public struct OpsRequest: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable, CaseIterable {
        case get, list, retry, skip, cancel, pause, resume, resolve, supplement
        /// Actions change sagas; `get` and `list` only read.
        public var changesSagas: Bool { self != .get && self != .list }
    }
    public var requestId: String
    /// Operator identity, recorded in the audit trail.
    public var by: String
    public var action: Action
    public var sagaId: String?
    public var step: String?
    public var attempt: Int?
    public var reason: String?
    public var note: String?
    /// `retry`: corrected payload fields; `resolve`: the step's outputs; `supplement`: the materials.
    public var data: [String: JSONValue]?
    public var filter: SagaFilter?
    /// Evaluate the action against a copy of each saga; change nothing.
    public var dryRun: Bool?

    public init(requestId: String, by: String, action: Action, sagaId: String? = nil, step: String? = nil,
                attempt: Int? = nil, reason: String? = nil, note: String? = nil, data: [String: JSONValue]? = nil,
                filter: SagaFilter? = nil, dryRun: Bool? = nil) {
        self.requestId = requestId; self.by = by; self.action = action; self.sagaId = sagaId; self.step = step
        self.attempt = attempt; self.reason = reason; self.note = note; self.data = data; self.filter = filter
        self.dryRun = dryRun
    }
}

/// Which sagas a `list` or a bulk action covers. Every field narrows; nil means any.
public struct SagaFilter: Codable, Sendable, Equatable {
    public var bundle: String?
    public var status: [SagaStatus]?
    public var atRisk: Bool?
    public var overdue: Bool?
    /// At most this many per partition (default 1000, at most 10,000).
    public var limit: Int?
    /// A step of this agency holds the saga up (running, backing off, failed, waiting, compensating).
    public var agency: String?
    /// This step holds the saga up.
    public var step: String?
    /// Submitted at or after this instant.
    public var submittedFrom: Instant?
    /// Submitted before this instant.
    public var submittedTo: Instant?
    /// The application's `region` (GB/T 2260 code) starts with this, e.g. `3301` for Hangzhou.
    public var region: String?
    /// The saga is paused, or one of its steps is held (`pause --step`): it waits for an operator.
    public var paused: Bool?
    /// Paging: only sagas after this one in (submittedAt, sagaId) order.
    public var after: SagaCursor?

    public init(bundle: String? = nil, status: [SagaStatus]? = nil, atRisk: Bool? = nil, overdue: Bool? = nil, limit: Int? = nil,
                agency: String? = nil, step: String? = nil, submittedFrom: Instant? = nil, submittedTo: Instant? = nil,
                region: String? = nil, paused: Bool? = nil, after: SagaCursor? = nil) {
        self.bundle = bundle; self.status = status; self.atRisk = atRisk; self.overdue = overdue; self.limit = limit
        self.agency = agency; self.step = step; self.submittedFrom = submittedFrom; self.submittedTo = submittedTo
        self.region = region; self.paused = paused; self.after = after
    }

    public static let defaultLimit = 1000
    public var effectiveLimit: Int { max(1, min(limit ?? Self.defaultLimit, 10_000)) }

    /// `bundle` is the saga's bundle version (needed for `agency`, `step` and `region`; without it
    /// those criteria do not match).
    public func matches(_ saga: SagaState, bundle: CompiledBundle?) -> Bool {
        if let bundle = self.bundle, saga.bundleId != bundle { return false }
        if let status, !status.contains(saga.status) { return false }
        if let atRisk, saga.slaAtRisk != atRisk { return false }
        if let overdue, saga.slaBreached != overdue { return false }
        if let paused, (saga.paused || saga.steps.contains { $0.isPaused && !$0.status.isDone }) != paused { return false }
        if let submittedFrom, saga.submittedAt < submittedFrom { return false }
        if let submittedTo, !(saga.submittedAt < submittedTo) { return false }
        if let after, !after.precedes(saga) { return false }
        if agency != nil || step != nil {
            guard let bundle else { return false }
            let blocking = saga.blockingSteps.filter { $0 < bundle.steps.count }.map { bundle.steps[$0] }
            if let agency, !blocking.contains(where: { $0.agency == agency }) { return false }
            if let step, !blocking.contains(where: { $0.id == step }) { return false }
        }
        if let region {
            guard let bundle, let code = saga.region(bundle: bundle), code.hasPrefix(region) else { return false }
        }
        return true
    }

    /// The matching sagas in (submittedAt, sagaId) order, at most `effectiveLimit`, and whether more matched.
    public func select(_ sagas: some Sequence<SagaState>, bundle: (SagaState) -> CompiledBundle?) -> (sagas: [SagaState], more: Bool) {
        let matching = sagas.filter { matches($0, bundle: bundle($0)) }.sorted(by: SagaCursor.order)
        return (Array(matching.prefix(effectiveLimit)), matching.count > effectiveLimit)
    }
}

/// A position in the (submittedAt, sagaId) order of sagas, for paging. As text: `<ms>/<sagaId>`.
public struct SagaCursor: Codable, Sendable, Equatable, CustomStringConvertible {
    public var submittedAt: Instant
    public var sagaId: String
    public init(submittedAt: Instant, sagaId: String) { self.submittedAt = submittedAt; self.sagaId = sagaId }
    public init(after saga: SagaState) { self.init(submittedAt: saga.submittedAt, sagaId: saga.sagaId) }

    public init?(token: String) {
        guard let slash = token.firstIndex(of: "/"), let ms = Int64(token[..<slash]) else { return nil }
        let id = String(token[token.index(after: slash)...])
        guard !id.isEmpty else { return nil }
        self.init(submittedAt: Instant(ms: ms), sagaId: id)
    }

    public var description: String { "\(submittedAt.ms)/\(sagaId)" }

    /// True when `saga` comes after this cursor.
    public func precedes(_ saga: SagaState) -> Bool {
        (submittedAt.ms, sagaId) < (saga.submittedAt.ms, saga.sagaId)
    }

    public static func order(_ a: SagaState, _ b: SagaState) -> Bool {
        (a.submittedAt.ms, a.sagaId) < (b.submittedAt.ms, b.sagaId)
    }
}

extension SagaState {
    /// Indices of the steps holding the saga up: out at an agency, backing off, failed, waiting
    /// for a supplement, or in compensation. Empty for a finished saga.
    public var blockingSteps: [Int] {
        guard !status.isFinal else { return [] }
        return steps.indices.filter {
            switch steps[$0].status {
            case .running, .backoff, .failed, .waitingSupplement, .compensating, .compensationBackoff, .compensationFailed: true
            case .pending: steps[$0].isPaused
            default: false
            }
        }
    }

    /// The application's `region` when the bundle keeps it (`$.region`).
    public func region(bundle: CompiledBundle) -> String? {
        guard let i = bundle.external.firstIndex(of: .form([.key("region")])), i < external.count else { return nil }
        return external[i].stringValue
    }
}

/// A saga a bulk action (or dry run) did not apply to, and why (the engine's reason).
public struct OpsRefusal: Codable, Sendable, Equatable {
    public var sagaId: String
    public var reason: String
    public init(sagaId: String, reason: String) { self.sagaId = sagaId; self.reason = reason }
}

public struct OpsReply: Codable, Sendable, Equatable {
    public var requestId: String
    public var ok: Bool
    public var error: String?
    /// The partition this answer covers (a `list` is answered per partition).
    public var partition: Int32
    public var sagas: [SagaState]?
    /// Actions: the sagas the action applied to (or, in a dry run, would apply to).
    public var affected: [String]?
    /// Actions: the sagas it did not (would not) apply to, with the reason.
    public var refused: [OpsRefusal]?
    public var dryRun: Bool?
    /// `list` and bulk actions: more sagas matched on this partition than this reply covers,
    /// because of the filter's limit or because one `ops-replies` record (`message.max.bytes`)
    /// holds no more. A `list` continues after the last saga returned; a bulk action applied
    /// to the sagas it names only, and is run again for the rest.
    public var more: Bool?
    /// The answering orchestrator's hub-clock now (Unix ms; virtual under `--clock-start`), so the
    /// CLI shows SLA and waiting times on the hub's clock without being told it. Nil from older hubs.
    public var now: Int64?

    public init(requestId: String, ok: Bool, error: String? = nil, partition: Int32, sagas: [SagaState]? = nil) {
        self.requestId = requestId; self.ok = ok; self.error = error; self.partition = partition; self.sagas = sagas
    }

    /// Longest refusal reason a bulk reply carries per saga (bytes of UTF-8); longer ones end in `…`.
    static let maxReasonBytes = 500

    static func capped(_ reason: String) -> String {
        guard reason.utf8.count > maxReasonBytes else { return reason }
        var out = "", bytes = 0
        for c in reason {
            bytes += String(c).utf8.count
            if bytes > maxReasonBytes - 3 { break }
            out.append(c)
        }
        return out + "…"
    }
}

enum OpsHandler {
    /// Bytes of one reply's own fields and envelope kept out of the budget for its sagas or ids.
    static let replyAllowance = 8_192

    /// The answer to `request` for `partition`. `maxReplyBytes` is the largest record the
    /// orchestrator may write (its `message.max.bytes`): a `list` returns as many sagas as fit
    /// (and `more`), a bulk action applies to as many sagas as its reply can name (and `more`).
    static func answer(_ request: OpsRequest, host: inout SagaHost, sagaPartition: [String: Int32], partition: Int32,
                       library: BundleLibrary, now: Instant, maxReplyBytes: Int = RecordSizeLimit.librdkafkaDefault) -> OpsReply {
        var reply = OpsReply(requestId: request.requestId, ok: true, partition: partition)
        reply.now = now.ms
        var budget = maxReplyBytes - replyAllowance - request.requestId.utf8.count
        func fail(_ message: String) -> OpsReply { reply.ok = false; reply.error = message; return reply }
        let owned = host.sagas.values.lazy.filter { sagaPartition[$0.sagaId] == partition }
        let bundleOf = { (s: SagaState) in library.bundle(s.bundleId, version: s.bundleVersion) }

        if request.action == .list {
            let selected = (request.filter ?? SagaFilter()).select(owned, bundle: bundleOf)
            let encoder = JSONEncoder()
            var page: [SagaState] = []
            for saga in selected.sagas {
                let size = ((try? encoder.encode(saga))?.count ?? 0) + 1
                if size > budget { break }
                budget -= size
                page.append(saga)
            }
            if page.isEmpty, let first = selected.sagas.first {
                return fail("saga \(first.sagaId) alone does not fit one ops-replies record (\(maxReplyBytes) bytes, message.max.bytes); "
                    + "read it from the changelog (--source changelog)")
            }
            reply.sagas = page
            reply.more = selected.more || page.count < selected.sagas.count
            return reply
        }
        guard let sagaId = request.sagaId else {
            guard request.action.changesSagas, let filter = request.filter else {
                return fail("'\(request.action.rawValue)' needs sagaId (or, for an action, a filter)")
            }
            // Bulk: this partition's matching sagas, one engine command each.
            let selected = filter.select(owned, bundle: bundleOf)
            reply.affected = []
            reply.refused = []
            reply.dryRun = request.dryRun ?? false
            reply.more = selected.more
            for saga in selected.sagas {
                // Apply to no more sagas than the reply can name (id, and a reason when refused).
                let room = saga.sagaId.utf8.count + 8 + 2 * OpsReply.maxReasonBytes + 32
                if room > budget { reply.more = true; break }
                let outcome = checked(request, saga, library) ?? (request.dryRun == true
                    ? preview(request, saga: saga, library: library, now: now)
                    : perform(request, sagaId: saga.sagaId, host: &host, now: now))
                switch outcome {
                case .success:
                    reply.affected!.append(saga.sagaId)
                    budget -= saga.sagaId.utf8.count + 3
                case .failure(let why):
                    let reason = OpsReply.capped(why.message)
                    reply.refused!.append(OpsRefusal(sagaId: saga.sagaId, reason: reason))
                    budget -= saga.sagaId.utf8.count + 2 * reason.utf8.count + 32
                }
            }
            return reply
        }
        guard let saga = host.state(sagaId) else { return fail("no saga \(sagaId)") }
        if request.action == .get {
            reply.sagas = [saga]
            return reply
        }
        let outcome = checked(request, saga, library) ?? (request.dryRun == true
            ? preview(request, saga: saga, library: library, now: now)
            : perform(request, sagaId: sagaId, host: &host, now: now))
        switch outcome {
        case .success(let state):
            reply.sagas = [state]
            reply.affected = [sagaId]
            reply.dryRun = request.dryRun
            return reply
        case .failure(let why):
            reply.dryRun = request.dryRun
            reply.refused = [OpsRefusal(sagaId: sagaId, reason: why.message)]
            return fail(why.message)
        }
    }

    struct Refused: Error { var message: String }

    /// The refusal of a `retry --set` or `resolve --output` that names a field the step does not
    /// have (`OperatorInputCheck`), before the engine sees it; nil when the names are valid.
    static func checked(_ request: OpsRequest, _ saga: SagaState, _ library: BundleLibrary) -> Result<SagaState, Refused>? {
        guard let bundle = library.bundle(saga.bundleId, version: saga.bundleVersion),
              let why = OperatorInputCheck.refusal(action: request.action, step: request.step, data: request.data, bundle: bundle,
                                                   catalogues: library.catalogues) else { return nil }
        return .failure(Refused(message: why))
    }

    /// The engine input an action stands for.
    static func event(for request: OpsRequest) -> Result<SagaEvent, Refused> {
        let action: OperatorCommand.Action
        switch request.action {
        case .retry:
            guard let step = request.step else { return .failure(Refused(message: "retry needs step")) }
            action = .retry(step: step, correctedInput: request.data)
        case .skip:
            guard let step = request.step, let reason = request.reason else { return .failure(Refused(message: "skip needs step and reason")) }
            action = .skip(step: step, reason: reason)
        case .cancel:
            action = .cancel(reason: request.reason ?? "cancelled by operator")
        case .pause:
            let reason = request.reason ?? "paused by operator"
            action = request.step.map { .pauseStep(step: $0, reason: reason) } ?? .pause(reason: reason)
        case .resume:
            action = request.step.map { .resumeStep(step: $0) } ?? .resume
        case .resolve:
            guard let step = request.step, let note = request.note else { return .failure(Refused(message: "resolve needs step and note")) }
            action = .resolveManually(step: step, outputs: request.data ?? [:], note: note)
        case .supplement:
            guard let step = request.step, let attempt = request.attempt, let data = request.data else {
                return .failure(Refused(message: "supplement needs step, attempt and data (the materials)"))
            }
            return .success(.supplementProvided(step: step, attempt: attempt, materials: data, by: request.by))
        case .get, .list:
            return .failure(Refused(message: "'\(request.action.rawValue)' is not an action"))
        }
        return .success(.operatorCommand(OperatorCommand(id: request.requestId, by: request.by, action)))
    }

    /// `detail` without the engine's leading "command <id>: " (the request id the CLI made up,
    /// e.g. `ctl-39c8fabc354e`), which means nothing to the operator who reads the refusal.
    static func withoutCommandId(_ detail: String) -> String {
        guard detail.hasPrefix("command "), let colon = detail.range(of: ": ") else { return detail }
        let id = detail[detail.index(detail.startIndex, offsetBy: 8)..<colon.lowerBound]
        return id.contains(" ") ? detail : String(detail[colon.upperBound...])
    }

    /// Why the engine did not take an input, from its audit outputs (a rejected command or an ignored input).
    static func refusal(in audits: some Sequence<(type: String, detail: String?)>) -> String? {
        for audit in audits where audit.type == MessageType.sagaAudit(AuditEvent.Kind.commandRejected.rawValue)
            || audit.type == MessageType.sagaAudit(AuditEvent.Kind.inputIgnored.rawValue) {
            // The engine's audit detail starts with the command's internal id ("command ctl-…: not
            // paused"): an operator never typed that id, so the refusal says only why.
            return audit.detail.map(OpsHandler.withoutCommandId) ?? "the command does not apply to the saga now"
        }
        return nil
    }

    /// Applies the action for real (recorded in the audit trail with the operator).
    static func perform(_ request: OpsRequest, sagaId: String, host: inout SagaHost, now: Instant) -> Result<SagaState, Refused> {
        let event: SagaEvent
        switch Self.event(for: request) {
        case .failure(let why): return .failure(why)
        case .success(let e): event = e
        }
        let written = host.outbound.count
        do { try host.apply(sagaId, SagaInput(at: now, event)) } catch { return .failure(Refused(message: "\(error)")) }
        if let why = refusal(in: host.outbound[written...].map { ($0.type, $0.payload["detail"]?.stringValue) }) {
            return .failure(Refused(message: why))
        }
        return host.state(sagaId).map { .success($0) } ?? .failure(Refused(message: "saga '\(sagaId)' vanished"))
    }

    /// Applies the action to a copy: what `perform` would do, without recording anything.
    static func preview(_ request: OpsRequest, saga: SagaState, library: BundleLibrary, now: Instant) -> Result<SagaState, Refused> {
        let event: SagaEvent
        switch Self.event(for: request) {
        case .failure(let why): return .failure(why)
        case .success(let e): event = e
        }
        guard let bundle = library.bundle(saga.bundleId, version: saga.bundleVersion), let calendar = library.calendar(for: bundle) else {
            return .failure(Refused(message: "bundle \(saga.bundleId) v\(saga.bundleVersion) is no longer loaded"))
        }
        var copy = saga
        let outputs = SagaEngine.apply(to: &copy, SagaInput(at: now, event), bundle: bundle, calendar: calendar)
        let audits = outputs.compactMap { output -> (type: String, detail: String?)? in
            if case .audit(let a) = output { return (MessageType.sagaAudit(a.kind.rawValue), a.detail) }
            return nil
        }
        if let why = refusal(in: audits) { return .failure(Refused(message: why)) }
        return .success(copy)
    }
}
