import Foundation
import Testing
import YishiKafka
import YishiTestSupport

/// Fault injection with librdkafka's mock cluster. The mock proves the
/// client copes with failures; exactly-once is proven on Tansu instead.
@Suite("Fault injection on the librdkafka mock cluster", .serialized)
struct MockClusterTests {
    @Test("idempotent producing through request errors and a broker outage loses and duplicates nothing", .timeLimit(.minutes(2)))
    func produceThroughFaults() async throws {
        let cluster = try MockCluster(brokers: 3)
        let topic = "faults"
        try cluster.createTopic(topic, partitions: 4, replicationFactor: 3)
        let config = cluster.clientConfig(["log_level": "2", "retry.backoff.ms": "20", "message.timeout.ms": "60000"])
        let producer = try KafkaProducer(config: config)
        let n = 6000
        cluster.failNextRequests(.produce, with: [.notLeaderOrFollower, .requestTimedOut, .notEnoughReplicas,
                                                  .requestTimedOut, .leaderNotAvailable])
        for i in 0..<n {
            if i == n / 3 { try cluster.setBrokerDown(1) }
            if i == n / 2 { try cluster.setRoundTripTime(2, milliseconds: 50) }
            if i == 2 * n / 3 {
                try cluster.setBrokerUp(1)
                cluster.failNextRequests(.produce, with: [.requestTimedOut, .requestTimedOut])
            }
            try producer.enqueue(ProducerRecord(topic: topic, key: "k\(i % 40)", value: Data(String(i).utf8)))
        }
        try producer.flush(timeout: .seconds(60))
        #expect(producer.deliveryCounts.delivered == n)
        #expect(producer.deliveryCounts.failed == 0)

        let messages = try await readAll(topic, partitions: 4, expecting: n, config: config, isolation: "read_uncommitted")
        let values = messages.map { Int(String(decoding: $0.value!, as: UTF8.self))! }
        #expect(values.count == n, "read \(values.count) of \(n)")
        #expect(Set(values).count == values.count, "duplicates: \(values.count - Set(values).count)")
        #expect(Set(values) == Set(0..<n))
        // Per key, the order of production is kept (idempotence keeps order through retries).
        for (_, group) in Dictionary(grouping: messages, by: { $0.keyString! }) {
            let sequence = group.sorted { $0.offset < $1.offset }.map { Int(String(decoding: $0.value!, as: UTF8.self))! }
            #expect(sequence == sequence.sorted())
        }
    }
}
