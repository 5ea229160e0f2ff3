import Foundation
import YishiKafka

/// The one size check every hub process makes before it enqueues records: the orchestrator,
/// the adapters, the department services, the front desk and the CLI.
///
/// It knows the producer's limit (`message.max.bytes` from the service's client configuration,
/// `HubConnection.recordLimit`). What a consumed record leads to is written whole or not at
/// all: when one of its records would not fit, none is written and the consumed record goes
/// to the DLQ with class `too-large` and a reason naming the topic, key and size of the record
/// that would not fit. A dead letter itself always fits (`DeadLetter.record` cuts it). Services
/// that answer rather than consume (operator replies, the CLI) use `check` and refuse instead.
public struct OutboundGuard: Sendable {
    public let limit: RecordSizeLimit
    /// Consumer group named in dead letters (`yishi.dlq.consumer.group`).
    public let group: String
    public let dlqTopic: String

    public init(limit: RecordSizeLimit, group: String, dlqTopic: String) {
        self.limit = limit; self.group = group; self.dlqTopic = dlqTopic
    }

    /// For a service of `connection` consuming as `group`.
    public init(connection: HubConnection, group: String) {
        self.init(limit: connection.recordLimit, group: group, dlqTopic: connection.topic("dlq"))
    }

    /// Throws `RecordTooLarge` for the first of `records` the producer would refuse.
    public func check(_ records: some Sequence<ProducerRecord>) throws(RecordTooLarge) {
        for record in records { try limit.check(record) }
    }

    /// The `too-large` rejection for the first of `records` that would not fit, nil when all fit.
    public func rejection(for records: some Sequence<ProducerRecord>) -> MessageRejection? {
        do { try check(records) } catch { return MessageRejection(.tooLarge, error.description) }
        return nil
    }

    /// `records` (what `message` leads to) when all fit; otherwise only the dead letter of
    /// `message` naming the record that would not fit, and that rejection.
    public func guarded(_ records: [ProducerRecord], from message: KafkaMessage, at: Date)
        -> (records: [ProducerRecord], rejection: MessageRejection?) {
        guard let why = rejection(for: records) else { return (records, nil) }
        return ([deadLetter(message, why, at: at)], why)
    }

    /// The dead letter of `message` (always within the limit).
    public func deadLetter(_ message: KafkaMessage, _ why: MessageRejection, at: Date) -> ProducerRecord {
        DeadLetter.record(for: message, group: group, error: why, at: at, dlqTopic: dlqTopic, limit: limit)
    }
}
