import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// Turns consumed records into engine inputs (or dead letters), and engine
/// outputs into CloudEvents records. The only place the orchestrator knows
/// about envelopes, schemas and topic names.
struct InboundDecoder {
    let config: OrchestratorConfig
    let registry: SchemaRegistry
    let policy = SourcePolicy.standard
    let source: String
    /// The size check of everything the orchestrator writes (its producer's `message.max.bytes`).
    let outboundGuard: OutboundGuard

    enum Decoded {
        case submit(sagaId: String, bundleId: String, form: JSONValue, at: Instant)
        case input(sagaId: String, SagaInput)
        case ops(OpsRequest)
        case deadLetter(ProducerRecord)
    }

    init(config: OrchestratorConfig) throws {
        self.config = config
        registry = try SchemaRegistry.load(directory: config.schemasDirectory)
        source = "/yishi/orchestrator/\(config.instanceId)"
        outboundGuard = OutboundGuard(connection: config.connection, group: config.groupId)
    }

    /// Bytes of `message.max.bytes` a saga-state record leaves free when an input is admitted,
    /// so that what timers add later (attempt counters, a manual case) still fits.
    var stateHeadroom: Int { outboundGuard.limit.maxBytes / 16 }

    /// The size check of one input's result (`SagaHost.admit`): the saga's new state record must
    /// leave `stateHeadroom`, and every record the input leads to must fit. Nil when all fit.
    func admit(sagaId: String, state: Data?, outbound: ArraySlice<SagaHost.Outbound>) -> String? {
        let limit = outboundGuard.limit
        // Fast path: an upper bound of the record's size from its parts; the exact size (the
        // record built with its envelope) only when the bound is not clearly below the limit.
        func bound(key: String, data: Data, _ parts: String?...) -> Int {
            RecordSizeLimit.recordOverhead + key.utf8.count + data.count + Self.envelopeAllowance
                + parts.reduce(0) { $0 + ($1?.utf8.count ?? 0) }
        }
        if let state, bound(key: sagaId, data: state, sagaId, sagaId, sagaId, source) > limit.maxBytes - stateHeadroom {
            let size = RecordSizeLimit.wireSize(stateRecord(sagaId: sagaId, data: state, partition: nil))
            if size > limit.maxBytes - stateHeadroom {
                return "the saga-state record for \(config.topic("saga-state")) key '\(sagaId)' would be \(size) bytes, above "
                    + "\(limit.maxBytes - stateHeadroom) (message.max.bytes \(limit.maxBytes) less \(stateHeadroom) kept for the saga's later steps)"
            }
        }
        for out in outbound where bound(key: out.key, data: out.data, out.sagaId, out.subject, out.step, out.type, source,
                                         out.payload["requestId"]?.stringValue, config.topic(out.topic)) > limit.maxBytes {
            do { try limit.check(record(out)) } catch { return error.description }
        }
        return nil
    }

    /// Bytes of an envelope's headers besides its variable fields (names, specversion, id, time,
    /// trace parent, content type, attempt, and their varints), generously.
    static let envelopeAllowance = 1_024

    func decode(_ message: KafkaMessage, now: Instant) -> Decoded {
        guard let topic = MessageCheck.unprefixed(message.topic, prefix: config.connection.prefix) else {
            return .deadLetter(deadLetter(message, MessageRejection(.wrongTopic, "topic \(message.topic) lacks the hub prefix \(config.connection.prefix)")))
        }
        let checked: ValidatedMessage
        switch MessageCheck.validate(message: message, topic: topic, registry: registry, policy: policy) {
        case .failure(let rejection): return .deadLetter(deadLetter(message, rejection))
        case .success(let ok): checked = ok
        }
        let json = checked.json
        // The hub decides with its own clock at the moment it acts (`now`), never with the
        // sender's `ce_time`: a replayed dead letter is days old, a department's clock may be
        // off. The instant goes into the audit events and the new state.
        let at = now
        let type = checked.envelope.type
        do {
            switch type {
            case MessageType.applicationSubmitted, MessageType.applicationFiled:
                let id = try string(json, "applicationId")
                guard message.keyString == id else {
                    throw MessageRejection(.unprocessable, "record key '\(message.keyString ?? "")' is not the applicationId '\(id)'", path: "$.applicationId")
                }
                return .submit(sagaId: id, bundleId: try string(json, "bundle"), form: json, at: at)
            case MessageType.opsRequest:
                return .ops(try JSONDecoder().decode(OpsRequest.self, from: checked.data))
            case MessageType.objectionReceived:
                return .input(sagaId: try string(json, "sagaId"), SagaInput(at: at, .objection(step: try string(json, "step"),
                                                                                           by: try string(json, "by"), reason: try string(json, "reason"))))
            default:
                return .input(sagaId: try string(json, "sagaId"), SagaInput(at: at, try event(type, json)))
            }
        } catch let rejection as MessageRejection {
            return .deadLetter(deadLetter(message, rejection))
        } catch {
            return .deadLetter(deadLetter(message, MessageRejection(.unprocessable, "\(error)")))
        }
    }

    private func event(_ type: String, _ json: JSONValue) throws -> SagaEvent {
        let step = try string(json, "step")
        let attempt = try int(json, "attempt")
        switch type {
        case MessageType.stepSucceeded:
            return .stepSucceeded(step: step, attempt: attempt, outputs: json["outputs"]?.objectValue ?? [:])
        case MessageType.stepRejected:
            return .stepRejected(step: step, attempt: attempt, code: try string(json, "code"), reason: try string(json, "reason"),
                                 field: json["field"]?.stringValue)
        case MessageType.stepFailed:
            return .stepFailed(step: step, attempt: attempt, code: try string(json, "code"), message: try string(json, "message"))
        case MessageType.supplementNeeded:
            let materials = (json["materials"]?.arrayValue ?? []).compactMap(\.stringValue)
            return .supplementNeeded(step: step, attempt: attempt, materials: materials)
        case MessageType.supplementProvided:
            return .supplementProvided(step: step, attempt: attempt, materials: json["materials"]?.objectValue ?? [:])
        case MessageType.compensationSucceeded:
            return .compensationSucceeded(step: step, attempt: attempt)
        case MessageType.compensationFailed:
            return .compensationFailed(step: step, attempt: attempt, code: try string(json, "code"), message: try string(json, "message"))
        default:
            throw MessageRejection(.wrongTopic, "the orchestrator does not consume '\(type)'")
        }
    }

    private func string(_ json: JSONValue, _ field: String) throws -> String {
        guard let value = json[field]?.stringValue else { throw MessageRejection(.schema, "missing string '\(field)'", path: "$.\(field)") }
        return value
    }

    private func int(_ json: JSONValue, _ field: String) throws -> Int {
        guard let value = json[field]?.doubleValue, let int = Int(exactly: value) else {
            throw MessageRejection(.schema, "missing integer '\(field)'", path: "$.\(field)")
        }
        return int
    }

    // MARK: Writing

    func deadLetter(_ message: KafkaMessage, _ rejection: MessageRejection) -> ProducerRecord {
        // Hub time, like every other timestamp the hub writes (adapters and departments too).
        outboundGuard.deadLetter(message, rejection, at: config.connection.clock.now().date)
    }

    func deadLetter(_ message: KafkaMessage, reason: MessageRejection.Class, detail: String) -> ProducerRecord {
        deadLetter(message, MessageRejection(reason, detail))
    }

    func record(_ out: SagaHost.Outbound) -> ProducerRecord {
        let envelope = Envelope(source: source, type: out.type, time: config.clock.now().date, subject: out.subject,
                                traceParent: Self.trace(for: out.sagaId), sagaId: out.sagaId, step: out.step, attempt: out.attempt,
                                requestId: out.payload["requestId"]?.stringValue)
        var record = envelope.record(topic: config.topic(out.topic), key: out.key, data: out.data)
        if let chain = out.chain { record.headers += Self.chainHeaders(chain) }
        return record
    }

    /// The audit-chain headers of a `saga-events` record (`AuditChain.Header`).
    static func chainHeaders(_ chain: SagaHost.Outbound.ChainLink) -> [KafkaHeader] {
        [KafkaHeader(AuditChain.Header.algorithm, chain.algorithm.rawValue), KafkaHeader(AuditChain.Header.previous, chain.previous),
         KafkaHeader(AuditChain.Header.link, chain.link), KafkaHeader(AuditChain.Header.position, String(chain.position))]
    }

    /// The `audit-heads` record of a saga whose audit chain advanced in this transaction: its
    /// head after the batch (`AuditChainHeadRecord`), keyed by saga id, on the saga's partition.
    func chainHeadRecord(sagaId: String, bundleVersion: Int, head: AuditChainHead, partition: Int32?) -> ProducerRecord {
        let now = config.clock.now()
        let body = AuditChainHeadRecord(sagaId: sagaId, bundleVersion: bundleVersion, algorithm: head.algorithm.rawValue,
                                        length: head.length, link: head.link, at: now.description)
        let envelope = Envelope(source: source, type: MessageType.auditChainHead, time: now.date, subject: sagaId,
                                traceParent: Self.trace(for: sagaId), sagaId: sagaId)
        var record = envelope.record(topic: config.topic("audit-heads"), key: sagaId, data: (try? JSONEncoder().encode(body)) ?? Data())
        record.partition = partition
        return record
    }

    func stateRecord(_ state: SagaState, partition: Int32?) -> ProducerRecord {
        stateRecord(sagaId: state.sagaId, data: SagaStateCodec.encode(state), partition: partition)
    }

    /// The changelog record of a saga whose state is already encoded (`data`).
    func stateRecord(sagaId: String, data: Data, partition: Int32?) -> ProducerRecord {
        let envelope = Envelope(source: source, type: MessageType.sagaState, time: config.clock.now().date, subject: sagaId,
                                traceParent: Self.trace(for: sagaId), sagaId: sagaId)
        var record = envelope.record(topic: config.topic("saga-state"), key: sagaId, data: data)
        // The value is SagaStateCodec's binary format or a finished summary, not the envelope's JSON.
        let media = data.starts(with: FinishedSummary.magic) ? FinishedSummary.mediaType : SagaStateCodec.mediaType
        record.headers = record.headers.map { $0.name == Envelope.Header.contentType ? KafkaHeader($0.name, media) : $0 }
        record.partition = partition
        return record
    }

    /// One trace per saga (一件事, one trace): the trace id is a stable hash of the saga id, so
    /// every hop of the saga, in any process and after any restart, joins the same trace;
    /// each record is a new span in it.
    static func trace(for sagaId: String) -> TraceParent? {
        func fnv(_ seed: UInt64) -> UInt64 {
            var h = seed
            for byte in sagaId.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return h
        }
        return TraceParent.span(inTrace: FastIds.hexString(fnv(0xcbf2_9ce4_8422_2325)) + FastIds.hexString(fnv(0x84222325cbf29ce4)))
    }

    /// The `ops-replies` record of `reply`. One that would not fit `message.max.bytes` (the
    /// handler pages lists and bulk actions, so only a saga alone too large for a record) is
    /// replaced by a refusal naming its size, so an operator request never stops the orchestrator.
    func opsReply(_ reply: OpsReply) -> ProducerRecord {
        let envelope = Envelope(source: source, type: MessageType.opsReply, time: config.clock.now().date, subject: reply.requestId)
        let record = envelope.record(topic: config.topic("ops-replies"), key: reply.requestId,
                                     data: (try? JSONEncoder().encode(reply)) ?? Data())
        do { try outboundGuard.limit.check(record) } catch {
            var refusal = OpsReply(requestId: reply.requestId, ok: false, error: "\(error); not sent. The request's effect, if any, "
                                   + "stands (see the saga's audit trail); ask for less (a smaller --limit or a narrower filter)",
                                   partition: reply.partition)
            refusal.more = reply.more
            return envelope.record(topic: config.topic("ops-replies"), key: reply.requestId,
                                   data: (try? JSONEncoder().encode(refusal)) ?? Data())
        }
        return record
    }
}

