import Foundation
import YishiKafka

/// A CloudEvents 1.0 event in the Kafka protocol binding's **binary mode**: every attribute is a
/// header (`ce_<name>`), `datacontenttype` is the `content-type` header and the value is the
/// JSON data as is. The hub's extension attributes carry the saga coordinates, so consumers
/// can route and dedupe without parsing the payload.
public struct Envelope: Sendable, Equatable {
    public static let specVersion = "1.0"
    public static let jsonContentType = "application/json"

    public var id: String
    /// URI-reference of the producer (`/yishi/orchestrator/<instance>`, `/dept/tax`, …); checked
    /// per topic by `SourcePolicy`.
    public var source: String
    public var type: String
    public var time: Date
    public var subject: String?
    public var dataContentType: String = Envelope.jsonContentType
    /// Sent as the plain `traceparent` header (what W3C-aware Kafka instrumentation reads).
    public var traceParent: TraceParent?
    /// Extension `yishisagaid`.
    public var sagaId: String?
    /// Extension `yishistep`: the bundle step id.
    public var step: String?
    /// Extension `yishiattempt`: the engine's attempt number (1-based).
    public var attempt: Int?
    /// Extension `yishirequestid`: the department idempotency key (`StepCommand.requestId`).
    public var requestId: String?

    /// `id` defaults to a fresh UUID; pass a deterministic one (e.g. from saga, step and attempt)
    /// when a re-run must produce the same event.
    public init(id: String = Envelope.newId(), source: String, type: String, time: Date, subject: String? = nil,
                traceParent: TraceParent? = nil, sagaId: String? = nil, step: String? = nil, attempt: Int? = nil,
                requestId: String? = nil) {
        self.id = id; self.source = source; self.type = type; self.time = time; self.subject = subject
        self.traceParent = traceParent; self.sagaId = sagaId; self.step = step; self.attempt = attempt
        self.requestId = requestId
    }

    /// A random version-4 UUID in lowercase (`FastIds.uuid`: no system call per id).
    public static func newId() -> String { FastIds.uuid() }

    /// Header names. Extension names follow CloudEvents: lowercase ASCII letters and digits only.
    public enum Header {
        public static let specVersion = "ce_specversion"
        public static let id = "ce_id"
        public static let source = "ce_source"
        public static let type = "ce_type"
        public static let time = "ce_time"
        public static let subject = "ce_subject"
        public static let contentType = "content-type"
        public static let traceParent = "traceparent"
        /// The CloudEvents distributed-tracing extension's spelling; read as a fallback.
        public static let ceTraceParent = "ce_traceparent"
        public static let sagaId = "ce_yishisagaid"
        public static let step = "ce_yishistep"
        public static let attempt = "ce_yishiattempt"
        public static let requestId = "ce_yishirequestid"
    }

    // MARK: encode

    public var headers: [KafkaHeader] {
        var h = [
            KafkaHeader(Header.specVersion, Envelope.specVersion),
            KafkaHeader(Header.id, id),
            KafkaHeader(Header.source, source),
            KafkaHeader(Header.type, type),
            KafkaHeader(Header.time, RFC3339.format(time)),
            KafkaHeader(Header.contentType, dataContentType),
        ]
        if let subject { h.append(KafkaHeader(Header.subject, subject)) }
        if let traceParent { h.append(KafkaHeader(Header.traceParent, traceParent.description)) }
        if let sagaId { h.append(KafkaHeader(Header.sagaId, sagaId)) }
        if let step { h.append(KafkaHeader(Header.step, step)) }
        if let attempt { h.append(KafkaHeader(Header.attempt, String(attempt))) }
        if let requestId { h.append(KafkaHeader(Header.requestId, requestId)) }
        return h
    }

    /// A record carrying this event with `data` (JSON bytes) as its value.
    public func record(topic: String, key: String?, data: Data) -> ProducerRecord {
        ProducerRecord(topic: topic, key: key, value: data, headers: headers)
    }

    /// A record carrying this event with `payload` encoded as JSON (sorted keys, stable bytes).
    public func record(topic: String, key: String?, payload: some Encodable) throws -> ProducerRecord {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return record(topic: topic, key: key, data: try e.encode(payload))
    }

    // MARK: decode

    /// Reads the attributes from headers. Checks, in order: specversion present and `1.0`; the
    /// other required attributes present (`ce_id`, `ce_source`, `ce_type`, `ce_time`,
    /// `content-type`); time is RFC 3339; content type is JSON; extensions well-formed.
    public init(headers: [KafkaHeader]) throws(EnvelopeError) {
        func required(_ name: String) throws(EnvelopeError) -> String {
            guard let v = headers.string(name), !v.isEmpty else {
                throw .missingAttribute(name, foundInstead: Envelope.lookalike(of: name, in: headers))
            }
            return v
        }
        let version = try required(Header.specVersion)
        guard version == Envelope.specVersion else { throw .wrongSpecVersion(version) }
        id = try required(Header.id)
        source = try required(Header.source)
        type = try required(Header.type)
        let timeText = try required(Header.time)
        let contentType = try required(Header.contentType)
        guard let t = RFC3339.parse(timeText) else { throw .badTime(timeText) }
        time = t
        // Parameters such as `; charset=utf-8` are allowed; media type names are case-insensitive.
        let media = contentType.split(separator: ";", maxSplits: 1)[0].trimmingCharacters(in: .whitespaces).lowercased()
        guard media == Envelope.jsonContentType else { throw .badContentType(contentType) }
        dataContentType = contentType
        subject = headers.string(Header.subject)
        traceParent = (headers.string(Header.traceParent) ?? headers.string(Header.ceTraceParent)).flatMap(TraceParent.init)
        func nonEmpty(_ name: String) throws(EnvelopeError) -> String? {
            guard let v = headers.string(name) else { return nil }
            guard !v.isEmpty, !v.contains(where: \.isWhitespace) else {
                throw .badExtension(name: name, value: v, reason: "must be non-empty without spaces")
            }
            return v
        }
        sagaId = try nonEmpty(Header.sagaId)
        step = try nonEmpty(Header.step)
        requestId = try nonEmpty(Header.requestId)
        if let a = headers.string(Header.attempt) {
            // CloudEvents Integer: 32-bit signed; attempts start at 1.
            guard a.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int32(a), n >= 1 else {
                throw .badExtension(name: Header.attempt, value: a, reason: "must be an integer ≥ 1")
            }
            attempt = Int(n)
        } else {
            attempt = nil
        }
    }

    /// A header other SDKs write where the binding wants `name`: the same name in another case
    /// (Kafka header names are case-sensitive byte strings, so `Content-Type` is not
    /// `content-type`), `ce_datacontenttype` for `content-type` (the binding maps datacontenttype
    /// to `content-type` in binary mode), or the HTTP binding's `ce-` prefix for `ce_`. Nil when
    /// there is none. The hub does not read these in place of the real header (two spellings
    /// could disagree); it names them so an operator can repair the record.
    public static func lookalike(of name: String, in headers: [KafkaHeader]) -> String? {
        var accepted: Set<String> = [name.lowercased()]
        if name == Header.contentType { accepted.insert("ce_datacontenttype"); accepted.insert("ce-datacontenttype") }
        if name.hasPrefix("ce_") { accepted.insert("ce-" + name.dropFirst(3).lowercased()) }
        return headers.first { $0.name != name && accepted.contains($0.name.lowercased()) }?.name
    }

    /// Attributes and parsed JSON data of a consumed record.
    public static func decode(_ message: KafkaMessage) throws(EnvelopeError) -> (Envelope, JSON) {
        let envelope = try Envelope(headers: message.headers)
        return (envelope, try parseData(message.value))
    }

    static func parseData(_ value: Data?) throws(EnvelopeError) -> JSON {
        guard let value, !value.isEmpty else { throw .notJSON("empty value") }
        do { return try JSON.parse(value) } catch {
            throw .notJSON(String(describing: error).prefix(200).description)
        }
    }
}

public enum EnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A required header is absent or empty; carries the header name (`ce_source`, …) and, when
    /// the record has one, the header found instead (`Content-Type`, `ce_datacontenttype`).
    case missingAttribute(String, foundInstead: String? = nil)
    case wrongSpecVersion(String)
    case badTime(String)
    case badContentType(String)
    case notJSON(String)
    case badExtension(name: String, value: String, reason: String)

    public var description: String {
        switch self {
        case .missingAttribute(let n, nil): "missing required header '\(n)'"
        case .missingAttribute(let n, let found?):
            "missing required header '\(n)' (found '\(found)' instead: Kafka header names are case-sensitive and the CloudEvents "
                + "Kafka binding names it '\(n)'; repair with `yishi dlq replay ID --set-header \(n)=VALUE --remove-header \(found)`)"
        case .wrongSpecVersion(let v): "ce_specversion is '\(v)', expected '\(Envelope.specVersion)'"
        case .badTime(let t): "ce_time '\(t)' is not an RFC 3339 date-time"
        case .badContentType(let c): "content-type '\(c)' is not \(Envelope.jsonContentType) (binary mode, JSON data only)"
        case .notJSON(let why): "value is not JSON: \(why)"
        case .badExtension(let n, let v, let r): "header '\(n)' = '\(v)': \(r)"
        }
    }
}
