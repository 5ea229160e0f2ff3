import Foundation
import SagaEngine

/// The payloads of the orchestrator's outbound records, built directly as `JSONValue`s: the same
/// values their `Codable` encodings give (property names as keys, absent optionals left out,
/// enums as their raw values, `Instant` as epoch milliseconds), without a JSONEncoder→JSONDecoder
/// round trip per record. `OutboundPayloadTests` checks each against that encoding.
enum OutboundPayload {
    /// A step command as it travels: the engine's `StepCommand` plus its `requestId`.
    static func command(_ c: StepCommand) -> JSONValue {
        .object([
            "kind": .string(c.kind.rawValue), "sagaId": .string(c.sagaId), "step": .string(c.step),
            "attempt": .number(Double(c.attempt)), "agency": .string(c.agency), "action": .string(c.action),
            "payload": .object(c.payload), "revision": .number(Double(c.revision)), "deadline": .number(Double(c.deadline.ms)),
            "requestId": .string(c.requestId),
        ])
    }

    static func audit(_ e: AuditEvent) -> JSONValue {
        var o: [String: JSONValue] = ["sagaId": .string(e.sagaId), "seq": .number(Double(e.seq)), "at": .number(Double(e.at.ms)),
                                      "kind": .string(e.kind.rawValue)]
        if let step = e.step { o["step"] = .string(step) }
        if let attempt = e.attempt { o["attempt"] = .number(Double(attempt)) }
        if let by = e.by { o["by"] = .string(by) }
        if let detail = e.detail { o["detail"] = .string(detail) }
        return .object(o)
    }

    static func licence(_ l: LicenceIssued) -> JSONValue {
        .object(["sagaId": .string(l.sagaId), "step": .string(l.step), "type": .string(l.type), "data": .object(l.data)])
    }

    static func manualCase(_ m: ManualCase) -> JSONValue {
        var o: [String: JSONValue] = ["step": .string(m.step), "kind": .string(m.kind.rawValue), "reason": .string(m.reason),
                                      "openedAt": .number(Double(m.openedAt.ms))]
        if let code = m.code { o["code"] = .string(code) }
        return .object(o)
    }

    /// 统一出件: the result package of a completed saga.
    static func resultPackage(_ p: ResultPackage) -> JSONValue {
        var o: [String: JSONValue] = ["applicationId": .string(p.applicationId), "bundle": .string(p.bundle),
                                      "bundleTitle": .string(p.bundleTitle)]
        if let completedAt = p.completedAt { o["completedAt"] = .string(completedAt) }
        o["items"] = .array(p.items.map {
            .object(["step": .string($0.step), "stepTitle": .string($0.stepTitle), "agency": .string($0.agency), "name": .string($0.name),
                     "label": .string($0.label), "value": $0.value])
        })
        return .object(o)
    }
}
