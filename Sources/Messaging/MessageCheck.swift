import Foundation
import YishiKafka

/// Why a consumed record cannot be processed: its class (the DLQ's `error.class`), a message,
/// and where applicable the offending header or JSON path.
public struct MessageRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Class: String, Sendable, CaseIterable {
        case missingHeader = "missing-header"
        /// A header is present but malformed: specversion, time, content type or an extension.
        case badHeader = "bad-header"
        case wrongSource = "wrong-source"
        /// No schema is registered for `ce_type`.
        case unknownType = "unknown-type"
        /// A known type on a topic that does not carry it.
        case wrongTopic = "wrong-topic"
        case notJSON = "not-json"
        case schema
        /// Valid, but about a saga the consumer does not know (e.g. an event for a saga never submitted).
        case unknownSaga = "unknown-saga"
        /// Well-formed but the consumer cannot act on it (e.g. an adapter cannot map it).
        case unprocessable
        /// Acting on it would write a record above the producer's `message.max.bytes` (the
        /// message names that record's topic, key and size); nothing of it was written.
        case tooLarge = "too-large"
        /// A `saga-state` (or `saga-snapshots`) value the orchestrator cannot decode at restore
        /// (corrupt, or written by a newer format): quarantined, the saga needs an operator.
        case undecodableState = "undecodable-state"
    }

    public var errorClass: Class
    public var message: String
    /// The header at fault, for header classes.
    public var header: String?
    /// JSON path of the offending value, for `schema`.
    public var path: String?

    public init(_ errorClass: Class, _ message: String, header: String? = nil, path: String? = nil) {
        self.errorClass = errorClass; self.message = message; self.header = header; self.path = path
    }

    public init(_ error: EnvelopeError) {
        switch error {
        case .missingAttribute(let name, _): self.init(.missingHeader, error.description, header: name)
        case .wrongSpecVersion: self.init(.badHeader, error.description, header: Envelope.Header.specVersion)
        case .badTime: self.init(.badHeader, error.description, header: Envelope.Header.time)
        case .badContentType: self.init(.badHeader, error.description, header: Envelope.Header.contentType)
        case .badExtension(let name, _, _): self.init(.badHeader, error.description, header: name)
        case .notJSON: self.init(.notJSON, error.description)
        }
    }

    public var description: String { "\(errorClass.rawValue): \(message)" }
}

/// A record that passed every check.
public struct ValidatedMessage: Sendable {
    public let envelope: Envelope
    public let json: JSON
    /// The value bytes as received, for `JSONDecoder` into the consumer's own types.
    public let data: Data
}

public enum MessageCheck {
    /// The one call every consumer makes. In order: required headers and specversion (and the
    /// other attribute formats), `ce_source` allowed on the topic, `ce_type` known and carried by
    /// this topic, value parses as JSON, value satisfies the type's schema. The first failure wins.
    /// `topic` is the name without the hub prefix (`events.tax`).
    public static func validate(message: KafkaMessage, topic: String, registry: SchemaRegistry,
                                policy: SourcePolicy) -> Result<ValidatedMessage, MessageRejection> {
        validate(headers: message.headers, value: message.value, topic: topic, registry: registry, policy: policy)
    }

    public static func validate(headers: [KafkaHeader], value: Data?, topic: String, registry: SchemaRegistry,
                                policy: SourcePolicy) -> Result<ValidatedMessage, MessageRejection> {
        let envelope: Envelope
        do { envelope = try Envelope(headers: headers) } catch { return .failure(MessageRejection(error)) }
        do { try policy.check(source: envelope.source, topic: topic) } catch {
            return .failure(MessageRejection(.wrongSource, error.description, header: Envelope.Header.source))
        }
        guard let schema = registry[envelope.type] else {
            return .failure(MessageRejection(.unknownType, "no schema for ce_type '\(envelope.type)'", header: Envelope.Header.type))
        }
        guard MessageType.allowed(envelope.type, onTopic: topic) == true else {
            return .failure(MessageRejection(.wrongTopic, "ce_type '\(envelope.type)' does not travel on topic '\(topic)'",
                                             header: Envelope.Header.type))
        }
        let json: JSON
        do { json = try Envelope.parseData(value) } catch { return .failure(MessageRejection(error)) }
        let violations = schema.validate(json, limit: 5)
        if let first = violations.first {
            let more = violations.count > 1 ? " (and \(violations.count - 1) more)" : ""
            return .failure(MessageRejection(.schema, "\(envelope.type): \(first)\(more)", path: first.path))
        }
        return .success(ValidatedMessage(envelope: envelope, json: json, data: value ?? Data()))
    }

    /// `yishi.events.tax` → `events.tax`; nil when `topic` lacks the prefix.
    public static func unprefixed(_ topic: String, prefix: String) -> String? {
        topic.hasPrefix(prefix) ? String(topic.dropFirst(prefix.count)) : nil
    }
}
