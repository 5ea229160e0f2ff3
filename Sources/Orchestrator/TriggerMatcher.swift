import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// 免申即享: turns events on the trigger topics of the loaded bundles into applications.
///
/// For every bundle with a `trigger` (docs/bundle-format.md, "Triggers"), an event of its
/// CloudEvents type on its topic whose data meets its conditions becomes one
/// `cn.gov.yishi.application.filed` record on `applications`, keyed by the deterministic saga
/// id `<bundle>-<key>` (`BundleDefinition.Trigger.sagaId`). The record is written in the same
/// transaction as the trigger record's offset, and the saga starts from it like any application,
/// on the partition of its id. The same event delivered again (or the same fact published again)
/// files an application with the same id, which the engine ignores ("already submitted"): one
/// saga per fact. Events that match nothing, tombstones and unreadable records are skipped: the
/// trigger topics belong to other writers, and a record there is not an input of the hub's.
struct TriggerMatcher {
    let bundles: [CompiledBundle]
    let config: OrchestratorConfig
    let source: String

    init(library: BundleLibrary, config: OrchestratorConfig) {
        bundles = config.triggers ? library.triggered : []
        self.config = config
        source = "/yishi/orchestrator/\(config.instanceId)/trigger"
    }

    /// The prefixed trigger topics to subscribe to (none when no bundle has a trigger).
    var topics: [String] { Array(Set(bundles.compactMap { $0.definition.trigger.map { config.topic($0.topic) } })).sorted() }

    func handles(_ topic: String) -> Bool { topics.contains(topic) }

    /// The applications `message` files (none when it triggers nothing).
    func applications(for message: KafkaMessage, now: Instant) -> [ProducerRecord] {
        guard let value = message.value, let type = message.headers.string(Envelope.Header.type),
              let data = try? JSONValue.parse(value) else { return [] }
        let eventId = message.headers.string(Envelope.Header.id) ?? "\(message.topic)-\(message.partition)-\(message.offset)"
        var out: [ProducerRecord] = []
        for bundle in bundles {
            guard let trigger = bundle.definition.trigger, config.topic(trigger.topic) == message.topic, trigger.type == type,
                  trigger.matches(data), let sagaId = trigger.sagaId(bundleId: bundle.id, eventId: eventId, data: data) else { continue }
            let form = trigger.form(data: data, sagaId: sagaId, bundleId: bundle.id, submittedAt: now.date.formatted(.iso8601))
            let envelope = Envelope(source: source, type: MessageType.applicationFiled, time: now.date, subject: sagaId, sagaId: sagaId)
            out.append(envelope.record(topic: config.topic("applications"), key: sagaId, data: Data(form.text().utf8)))
        }
        return out
    }
}
