import Foundation
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// Every e-licence issued so far, read from the compacted `licences` topic (all
/// partitions: any saga may need any holder's licences) on its own thread.
/// Records are keyed `<uscc>/<licence type>`; the newest per key wins, as compaction keeps.
/// Held by holder, so a lookup costs nothing however many licences exist.
final class LicenceTable: Sendable {
    private let consumer: KafkaConsumer
    private let entries = Entries()
    private let loop: PollThread

    final class Entries: Sendable {
        /// holder USCC → licence type → the licence's data
        let byHolder = Mutex<[String: [String: JSONValue]]>([:])
    }

    /// A record that is not a licence (no `<uscc>/<type>` key, no JSON value with `data`) is
    /// skipped and logged with its topic, partition and offset; reading goes on.
    init(config: OrchestratorConfig, log: JSONLog) throws {
        consumer = try KafkaConsumer(config: config.consumerConfig(),
                                     groupId: "\(config.groupId)-licences-\(config.instanceId)")
        try consumer.assign((0..<config.partitions).map {
            TopicPartitionOffset(config.topic("licences"), $0, TopicPartitionOffset.beginning)
        })
        let consumer = self.consumer, entries = self.entries
        loop = PollThread(name: "yishi.licences") {
            guard let batch = try? consumer.poll(maxMessages: 1000, timeout: .milliseconds(200)) else { return }
            for message in batch {
                guard let key = message.keyString, let slash = key.lastIndex(of: "/"), let value = message.value,
                      let data = (try? JSONValue.parse(value))?["data"] else {
                    if message.value != nil {  // a tombstone is no licence, and no problem either
                        log.warn("skipped unreadable licence record", ["topic": message.topic, "partition": String(message.partition),
                                                                       "offset": String(message.offset), "key": message.keyString ?? "-"])
                    }
                    continue
                }
                let holder = String(key[..<slash]), type = String(key[key.index(after: slash)...])
                entries.byHolder.withLock { $0[holder, default: [:]][type] = data }
            }
        }
    }

    /// The licences `uscc` holds, by type (what `SagaEvent.submit` takes).
    func licences(holder uscc: String) -> [String: JSONValue] {
        entries.byHolder.withLock { $0[uscc] ?? [:] }
    }

    func close() {
        loop.stop()
        try? consumer.close()
    }
}
