import Foundation
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Kafka layer against a Tansu broker over TCP", .serialized)
struct ProducerConsumerTests {
    @Test("broker under test is a real process on loopback")
    func brokerIsOnLoopback() throws {
        let bootstrap = try Broker.bootstrap
        #expect(bootstrap.hasPrefix("127.") || bootstrap.hasPrefix("localhost:"), "bootstrap \(bootstrap)")
        let admin = try KafkaAdmin(config: try Broker.config())
        _ = try admin.describeTopics()
        print("KafkaTests: broker at \(bootstrap), librdkafka \(librdkafkaVersion)")
        let parts = librdkafkaVersion.split(separator: ".").compactMap { Int($0) }
        #expect(parts.count >= 2 && (parts[0] > 2 || (parts[0] == 2 && parts[1] >= 8)), "librdkafka \(librdkafkaVersion) < 2.8")
    }

    @Test("round trip keeps keys, values, headers and reports offsets")
    func roundTrip() async throws {
        let topic = uniqueName("roundtrip")
        let admin = try KafkaAdmin(config: try Broker.config())
        try await admin.ensureTopics([TopicSpec(topic, partitions: 3)])
        let producer = try KafkaProducer(config: try Broker.config())
        var reports: [String: DeliveryReport] = [:]
        for i in 0..<60 {
            let record = ProducerRecord(
                topic: topic, key: "saga-\(i % 7)", value: Data("payload \(i) 一事".utf8),
                headers: [KafkaHeader("ce_id", "id-\(i)"), KafkaHeader("ce_type", "yishi.test"), KafkaHeader("empty", nil)])
            reports["id-\(i)"] = try await producer.send(record)
        }
        #expect(producer.deliveryCounts.delivered == 60)
        let messages = try await readAll(topic, partitions: 3, expecting: 60, config: try Broker.config())
        #expect(messages.count == 60)
        for message in messages {
            let id = try #require(message.headers.string("ce_id"))
            let index = try #require(Int(id.dropFirst(3)))
            #expect(message.keyString == "saga-\(index % 7)")
            #expect(message.value == Data("payload \(index) 一事".utf8))
            #expect(message.headers.string("ce_type") == "yishi.test")
            #expect(message.headers.contains { $0.name == "empty" && $0.value == nil })
            let report = try #require(reports[id])
            #expect(report.topic == topic && report.partition == message.partition && report.offset == message.offset)
        }
        // The same key always lands on the same partition.
        let partitionsByKey = Dictionary(grouping: messages, by: { $0.keyString! }).mapValues { Set($0.map(\.partition)) }
        #expect(partitionsByKey.values.allSatisfy { $0.count == 1 })
    }

    @Test("a bad configuration names the property")
    func badConfiguration() throws {
        var config = try Broker.config()
        config["linger.ms"] = "banana"
        do {
            _ = try KafkaProducer(config: config)
            Issue.record("a producer was created with linger.ms=banana")
        } catch {
            #expect(error.kind == .configuration(property: "linger.ms"))
            #expect(error.description.contains("linger.ms"))
        }
        config = try Broker.config(["no.such.property": "1"])
        #expect(throws: KafkaError.self) { _ = try KafkaConsumer(config: config, groupId: "g") }
    }

    @Test("hub topics are created idempotently, compacted where the design says so")
    func hubTopics() throws {
        let prefix = uniqueName("hub") + "."
        let admin = try KafkaAdmin(config: try Broker.config())
        let specs = HubTopics.all(prefix: prefix, partitions: 4, agencies: HubTopics.defaultAgencies)
        try admin.ensureTopics(specs)
        try admin.ensureTopics(specs)  // second call changes nothing and does not fail
        let topics = try admin.describeTopics()
        for spec in specs {
            let found = try #require(topics[spec.name], "missing \(spec.name)")
            #expect(found.partitions == 4)
        }
        #expect(specs.filter(\.isCompacted).map(\.name).sorted() == [prefix + "licences", prefix + "saga-state"])
        let config = try admin.topicConfig(prefix + "saga-state")
        #expect(config["cleanup.policy"] == "compact", "saga-state config: \(config)")
        // A topic that exists with another partition count is reported, not silently used.
        do {
            try admin.ensureTopics([TopicSpec(prefix + "dlq", partitions: 8)])
            Issue.record("ensureTopics accepted a partition-count mismatch")
        } catch {
            #expect(error.message.contains("has 4 partitions"))
        }
    }
}
