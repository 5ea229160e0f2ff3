import Foundation
import SagaEngine
import Synchronization
import YishiKafka

/// Every e-licence issued so far, read from the compacted `licences` topic (all
/// partitions: any saga may need any holder's licences) on its own thread.
/// Keyed `<uscc>/<licence type>`; the newest record per key wins, as compaction keeps.
final class LicenceTable: Sendable {
    private let consumer: KafkaConsumer
    private let entries = Entries()
    private let loop: PollThread

    final class Entries: Sendable {
        let byKey = Mutex<[String: [String: JSONValue]]>([:])
    }

    init(config: OrchestratorConfig) throws {
        consumer = try KafkaConsumer(config: config.clientConfig(),
                                     groupId: "\(config.groupId)-licences-\(config.instanceId)")
        try consumer.assign((0..<config.partitions).map {
            TopicPartitionOffset(config.topic("licences"), $0, TopicPartitionOffset.beginning)
        })
        let consumer = self.consumer, entries = self.entries
        loop = PollThread(name: "yishi.licences") {
            guard let batch = try? consumer.poll(maxMessages: 1000, timeout: .milliseconds(200)) else { return }
            for message in batch {
                guard let key = message.keyString, let value = message.value,
                      let data = (try? JSONValue.parse(value))?["data"]?.objectValue else { continue }
                entries.byKey.withLock { $0[key] = data }
            }
        }
    }

    /// The licences `uscc` holds, by type (what `SagaEvent.submit` takes).
    func licences(holder uscc: String) -> [String: JSONValue] {
        let prefix = uscc + "/"
        return entries.byKey.withLock { all in
            var held: [String: JSONValue] = [:]
            for (key, data) in all where key.hasPrefix(prefix) { held[String(key.dropFirst(prefix.count))] = .object(data) }
            return held
        }
    }

    func close() {
        loop.stop()
        try? consumer.close()
    }
}
