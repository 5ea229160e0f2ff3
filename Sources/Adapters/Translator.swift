import Foundation
import Messaging
import SagaEngine

/// What an adapter keeps about one canonical command while its native requests are out: the
/// command itself, which native call of the action is out, and the replies so far. It travels in
/// the `yishi-adapter-context` header of the native request, which the department's gateway echoes
/// on the reply (request/reply correlation as in JMS or Spring's reply headers), so the adapter
/// itself keeps no state and a restarted adapter loses nothing.
public struct AdapterContext: Codable, Sendable, Equatable {
    public static let header = "yishi-adapter-context"
    public var command: JSONValue
    public var call: Int
    public var replies: [String: JSONValue]

    public var sagaId: String { command["sagaId"]?.stringValue ?? "" }
    public var step: String { command["step"]?.stringValue ?? "" }
    public var attempt: Int { command["attempt"]?.intValue ?? 0 }
    public var requestId: String { command["requestId"]?.stringValue ?? "" }
    public var isCompensation: Bool { command["kind"]?.stringValue == "compensation" }
}

/// One native request to send on `dept.<agency>.requests`.
public struct NativeRequest: Sendable, Equatable {
    public var action: String
    /// The department's idempotency key: the canonical request id (saga, step, payload revision)
    /// and the native action. A retry of the same revision reuses it, so the department answers
    /// it from its memo instead of acting twice.
    public var requestId: String
    public var message: JSONValue
    public var context: AdapterContext
}

/// A canonical event to send on `events.<agency>`.
public struct CanonicalEvent: Sendable, Equatable {
    public var type: String
    public var payload: JSONValue
    public var context: AdapterContext
}

/// What a command or a native reply leads to.
public enum Outcome: Sendable, Equatable {
    /// A native request: the command's first call, or the next call of a sequence (票种核定 then UKey).
    case request(NativeRequest)
    case event(CanonicalEvent)
}

/// The pure part of an adapter: canonical command → native request, native reply → next native
/// request or canonical event. No Kafka here; `AdapterService` runs it.
public struct Translator: Sendable {
    public let mapping: AgencyMapping
    public let catalogue: AgencyCatalogue

    public init(mapping: AgencyMapping, catalogue: AgencyCatalogue) {
        self.mapping = mapping; self.catalogue = catalogue
    }

    /// The first native request of a canonical command (`step.requested` or
    /// `compensation.requested` data), or the event that refuses it when it cannot be mapped.
    public func start(command: JSONValue) -> Outcome {
        let context = AdapterContext(command: command, call: 0, replies: [:])
        let id = command["action"]?.stringValue ?? "?"
        guard let action = mapping.actions[id] else {
            return .event(refusal(context, mapping.unsupported[id].map { "'\(id)' is not supported: \($0)" } ?? "no mapping for action '\(id)'"))
        }
        do { return .request(try request(action, context)) } catch { return .event(refusal(context, error.description)) }
    }

    /// What a native reply leads to. Throws when the reply does not belong to the context (its
    /// request id differs): the caller dead-letters it.
    public func finish(reply: JSONValue, context: AdapterContext) throws(MappingError) -> Outcome {
        guard let action = context.command["action"]?.stringValue.flatMap({ mapping.actions[$0] }),
              context.call >= 0, context.call < action.calls.count else {
            throw MappingError(AdapterContext.header, "context names no call of a mapped action")
        }
        let call = action.calls[context.call]
        let expected = nativeRequestId(context, call)
        guard let echoed = reply[mapping.reply.requestId]?.stringValue, echoed == expected else {
            throw MappingError("$.\(mapping.reply.requestId)", "reply is for request '\(reply[mapping.reply.requestId]?.stringValue ?? "none")', expected '\(expected)'")
        }
        let status = reply[mapping.reply.status]?.stringValue ?? ""
        guard mapping.reply.success.contains(status) else { return .event(failure(reply, call, context)) }

        var next = context
        next.replies[call.native] = reply
        if context.call + 1 < action.calls.count {
            next.call += 1
            do { return .request(try request(action, next)) } catch { return .event(refusal(next, error.description)) }
        }
        if context.isCompensation { return .event(event(MessageType.compensationSucceeded, next, [:])) }
        do {
            let outputs = try action.outputs.render(templateContext(next)) ?? .object([:])
            return .event(event(MessageType.stepSucceeded, next, ["outputs": outputs]))
        } catch {
            return .event(refusal(next, "cannot map the department's reply: \(error.description)"))
        }
    }

    // MARK: building

    private func request(_ action: AgencyMapping.Action, _ context: AdapterContext) throws(MappingError) -> NativeRequest {
        let call = action.calls[context.call]
        guard var body = try call.request.render(templateContext(context))?.objectValue else {
            throw MappingError(mapping.file, "request template of \(call.native) does not build an object")
        }
        let id = nativeRequestId(context, call)
        let e = mapping.envelope
        body[e.requestId] = .string(id)
        body[e.action] = .string(call.native)
        body[e.sagaRef] = .string(context.sagaId)
        body[e.stepRef] = .string(context.step)
        return NativeRequest(action: call.native, requestId: id, message: .object(body), context: carried(context, action))
    }

    /// What the `yishi-adapter-context` header of call `context.call` carries: the command's
    /// coordinates (saga, step, attempt, request id, kind, action, revision, deadline) and, of
    /// its payload and the replies so far, only the top-level fields the calls still to come,
    /// the outputs and the 容缺 materials read. The header travels through the department's
    /// systems and carries personal data (names, ID numbers, phone numbers) only where a later
    /// template needs them. A context that carries more (written before this rule) reads the same.
    func carried(_ context: AdapterContext, _ action: AgencyMapping.Action) -> AdapterContext {
        var later = Array(action.calls.dropFirst(context.call + 1).map(\.request)) + [action.outputs]
        if let named = mapping.supplementMaterials { later.append(named) }
        var inputs = later.reduce(into: Set<String>()) { $0.formUnion($1.reads("input")) }
        let replies = later.reduce(into: Set<String>()) { $0.formUnion($1.reads("replies")) }
        // The 容缺 fallback lists the materials the form marks not provided; supplements mark them provided.
        if !context.isCompensation, !mapping.supplementCodes.isEmpty { inputs.formUnion(["materials", "supplements"]) }
        if inputs.contains("materials") { inputs.insert("supplements") }
        var out = context
        if !inputs.contains("*"), case .object(var command) = context.command, let payload = command["payload"]?.objectValue {
            command["payload"] = .object(payload.filter { inputs.contains($0.key) })
            out.command = .object(command)
        }
        if !replies.contains("*") { out.replies = context.replies.filter { replies.contains($0.key) } }
        return out
    }

    private func nativeRequestId(_ context: AdapterContext, _ call: AgencyMapping.Call) -> String {
        context.requestId + "/" + call.native
    }

    /// `$.input` is the command's payload with supplied 容缺 materials marked provided;
    /// `$.replies.<NATIVE>` the replies so far.
    func templateContext(_ context: AdapterContext) -> JSONValue {
        .object(["input": Self.withSupplements(context.command["payload"] ?? .object([:])),
                 "replies": .object(context.replies)])
    }

    /// A supplement (`payload.supplements.<material>`) makes that material provided; a supplied
    /// material the form did not list at all (the department named it) is added as provided.
    public static func withSupplements(_ payload: JSONValue) -> JSONValue {
        guard var o = payload.objectValue, let supplied = o["supplements"]?.objectValue, let materials = o["materials"]?.arrayValue else {
            return payload
        }
        var listed = Set<String>()
        var out: [JSONValue] = materials.map { m in
            guard var mo = m.objectValue, let type = mo["type"]?.stringValue else { return m }
            listed.insert(type)
            guard supplied[type] != nil else { return m }
            mo["provided"] = .bool(true)
            return .object(mo)
        }
        for type in supplied.keys.sorted() where !listed.contains(type) {
            out.append(.object(["type": .string(type), "provided": .bool(true)]))
        }
        o["materials"] = .array(out)
        return .object(o)
    }

    // MARK: answering

    private func failure(_ reply: JSONValue, _ call: AgencyMapping.Call, _ context: AdapterContext) -> CanonicalEvent {
        let native = reply[mapping.reply.code]?.stringValue ?? reply[mapping.reply.status]?.stringValue ?? "?"
        let message = reply[mapping.reply.message]?.stringValue ?? ""
        let nativeField = reply[mapping.reply.field]?.stringValue
        let said = "\(mapping.agency) \(call.native) \(native): \(message)" + (nativeField.map { " (field \($0))" } ?? "")
        if !context.isCompensation, mapping.supplementCodes.contains(native) {
            // The applicant is asked for what the department named; only a department that names
            // nothing falls back on the materials the form marked as not provided.
            var missing = namedMaterials(reply, context)
            if missing.isEmpty {
                missing = (Self.withSupplements(context.command["payload"] ?? .null)["materials"]?.arrayValue ?? [])
                    .filter { $0["provided"]?.boolValue == false }.compactMap { $0["type"]?.stringValue }
            }
            if !missing.isEmpty { return event(MessageType.supplementNeeded, context, ["materials": .array(missing.map { .string($0) })]) }
        }
        let code = mapping.errors[native] ?? mapping.otherwise
        let retryable = catalogue.error(code)?.retryable ?? false
        if context.isCompensation {
            return event(MessageType.compensationFailed, context, ["code": .string(code), "message": .string(said)])
        }
        if retryable { return event(MessageType.stepFailed, context, ["code": .string(code), "message": .string(said)]) }
        var fields: [String: JSONValue] = ["code": .string(code), "reason": .string(said)]
        if let input = nativeField.flatMap({ call.request.sourceField(of: $0) }) { fields["field"] = .string("$." + input) }
        return event(MessageType.stepRejected, context, fields)
    }

    /// The materials a 容缺 reply names (`supplementMaterials` of the mapping over `$.reply`), in
    /// the order named, without repeats; empty when the mapping or the reply names none.
    func namedMaterials(_ reply: JSONValue, _ context: AdapterContext) -> [String] {
        guard let template = mapping.supplementMaterials else { return [] }
        var ctx = templateContext(context).objectValue ?? [:]
        ctx["reply"] = reply
        let rendered: JSONValue? = (try? template.render(.object(ctx))) ?? nil
        var seen = Set<String>()
        return (rendered?.arrayValue ?? []).compactMap(\.stringValue).filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    /// The command cannot be put in the department's terms: a business rejection (not retryable:
    /// the same payload would fail the same way).
    private func refusal(_ context: AdapterContext, _ why: String) -> CanonicalEvent {
        let type = context.isCompensation ? MessageType.compensationFailed : MessageType.stepRejected
        let text = "adapter \(mapping.agency): \(why)"
        return event(type, context, context.isCompensation ? ["code": .string(mapping.otherwise), "message": .string(text)]
                                                           : ["code": .string(mapping.otherwise), "reason": .string(text)])
    }

    private func event(_ type: String, _ context: AdapterContext, _ fields: [String: JSONValue]) -> CanonicalEvent {
        var payload = fields
        payload["sagaId"] = .string(context.sagaId)
        payload["step"] = .string(context.step)
        payload["attempt"] = .number(Double(context.attempt))
        payload["requestId"] = .string(context.requestId)
        return CanonicalEvent(type: type, payload: .object(payload), context: context)
    }
}
