import Foundation
import Messaging
import SagaEngine

/// An operator request from the `ops` topic (request/reply; `requestId` correlates).
public struct OpsRequest: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable {
        case get, list, retry, skip, cancel, pause, resume, resolve, supplement
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

    public init(requestId: String, by: String, action: Action, sagaId: String? = nil, step: String? = nil,
                attempt: Int? = nil, reason: String? = nil, note: String? = nil, data: [String: JSONValue]? = nil,
                filter: SagaFilter? = nil) {
        self.requestId = requestId; self.by = by; self.action = action; self.sagaId = sagaId; self.step = step
        self.attempt = attempt; self.reason = reason; self.note = note; self.data = data; self.filter = filter
    }
}

public struct SagaFilter: Codable, Sendable, Equatable {
    public var bundle: String?
    public var status: [SagaStatus]?
    public var atRisk: Bool?
    public var overdue: Bool?
    public var limit: Int?
    public init(bundle: String? = nil, status: [SagaStatus]? = nil, atRisk: Bool? = nil, overdue: Bool? = nil, limit: Int? = nil) {
        self.bundle = bundle; self.status = status; self.atRisk = atRisk; self.overdue = overdue; self.limit = limit
    }

    func matches(_ saga: SagaState) -> Bool {
        if let bundle, saga.bundleId != bundle { return false }
        if let status, !status.contains(saga.status) { return false }
        if let atRisk, saga.slaAtRisk != atRisk { return false }
        if let overdue, saga.slaBreached != overdue { return false }
        return true
    }
}

public struct OpsReply: Codable, Sendable, Equatable {
    public var requestId: String
    public var ok: Bool
    public var error: String?
    /// The partition this answer covers (a `list` is answered per partition).
    public var partition: Int32
    public var sagas: [SagaState]?
}

enum OpsHandler {
    static func answer(_ request: OpsRequest, host: inout SagaHost, sagaPartition: [String: Int32], partition: Int32,
                       library: BundleLibrary, now: Instant) -> OpsReply {
        var reply = OpsReply(requestId: request.requestId, ok: true, error: nil, partition: partition, sagas: nil)
        func fail(_ message: String) -> OpsReply { reply.ok = false; reply.error = message; return reply }

        if request.action == .list {
            let filter = request.filter ?? SagaFilter()
            let limit = max(1, min(filter.limit ?? 1000, 10_000))
            let matching = host.sagas.values.filter { sagaPartition[$0.sagaId] == partition && filter.matches($0) }
            reply.sagas = Array(matching.sorted { $0.submittedAt < $1.submittedAt }.prefix(limit))
            return reply
        }
        guard let sagaId = request.sagaId else { return fail("'\(request.action.rawValue)' needs sagaId") }
        guard host.state(sagaId) != nil else { return fail("saga '\(sagaId)' is not owned by the instance that owns partition \(partition)") }
        if request.action == .get {
            reply.sagas = [host.state(sagaId)!]
            return reply
        }
        let action: OperatorCommand.Action
        let event: SagaEvent
        switch request.action {
        case .retry:
            guard let step = request.step else { return fail("retry needs step") }
            action = .retry(step: step, correctedInput: request.data)
        case .skip:
            guard let step = request.step, let reason = request.reason else { return fail("skip needs step and reason") }
            action = .skip(step: step, reason: reason)
        case .cancel:
            action = .cancel(reason: request.reason ?? "cancelled by operator")
        case .pause:
            action = .pause(reason: request.reason ?? "paused by operator")
        case .resume:
            action = .resume
        case .resolve:
            guard let step = request.step, let note = request.note else { return fail("resolve needs step and note") }
            action = .resolveManually(step: step, outputs: request.data ?? [:], note: note)
        case .supplement:
            guard let step = request.step, let attempt = request.attempt, let data = request.data else {
                return fail("supplement needs step, attempt and data (the materials)")
            }
            do {
                try host.apply(sagaId, SagaInput(at: now, .supplementProvided(step: step, attempt: attempt, materials: data)))
            } catch { return fail("\(error)") }
            reply.sagas = host.state(sagaId).map { [$0] }
            return reply
        case .get, .list:
            return fail("unreachable")
        }
        event = .operatorCommand(OperatorCommand(id: request.requestId, by: request.by, action))
        let written = host.outbound.count
        do { try host.apply(sagaId, SagaInput(at: now, event)) } catch { return fail("\(error)") }
        // The engine records a command that does not apply now; say why.
        if let rejected = host.outbound[written...].first(where: { $0.type == MessageType.sagaAudit(AuditEvent.Kind.commandRejected.rawValue) }) {
            return fail(rejected.payload["detail"]?.stringValue ?? "the command does not apply to the saga now")
        }
        reply.sagas = host.state(sagaId).map { [$0] }
        return reply
    }
}
