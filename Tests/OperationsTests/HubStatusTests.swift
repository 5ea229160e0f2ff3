import Foundation
import Operations
import Synchronization
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Lag and group membership on the broker", .serialized)
struct LagAndMembershipTests {
    /// A topic written in transactions: each commit marker takes an offset. A group that has
    /// consumed every record is idle, and its lag is 0 although the high watermark is one past it.
    @Test func lagCountsRecordsNotTransactionMarkers() throws {
        let fx = try OpsFixture(partitions: 1)
        let topic = fx.topic("commands.tax")
        let producer = try KafkaProducer(config: fx.hub.kafka(), transactionalId: fx.prefix + "lag-test")
        try producer.initTransactions()
        for n in 0..<2 {
            try producer.beginTransaction()
            for i in 0..<3 { try producer.enqueue(ProducerRecord(topic: topic, key: "APP-\(n)-\(i)", value: Data("{}".utf8))) }
            try producer.commitTransaction()
        }
        let records = try TopicReader(hub: fx.hub).read(topic: topic, partitions: [0])
        #expect(records.count == 6)
        let group = HubGroups.adapter(prefix: fx.prefix, agency: "tax")
        let consumer = try KafkaConsumer(config: fx.hub.kafka(), groupId: group)
        defer { try? consumer.close() }
        let probe = LagProbe(hub: fx.hub)

        // Nothing committed: every delivered record waits (not the markers, not the aborted one).
        var row = try #require(try probe.lag(group: group, topics: ["commands.tax"]).first)
        #expect(row.lag == 6 && row.partitions[0].committed == nil, "\(row)")

        // Consumed up to the first transaction's last record: the second transaction's 3 wait.
        try consumer.commit([TopicPartitionOffset(topic, 0, records[2].offset + 1)])
        row = try #require(try probe.lag(group: group, topics: ["commands.tax"]).first)
        #expect(row.lag == 3 && row.exact, "\(row)")

        // Consumed everything: lag 0, although the high watermark counts the markers.
        try consumer.commit([TopicPartitionOffset(topic, 0, records[5].offset + 1)])
        row = try #require(try probe.lag(group: group, topics: ["commands.tax"]).first)
        #expect(row.partitions[0].high > records[5].offset + 1, "the markers take offsets: \(row)")
        #expect(row.lag == 0 && row.exact, "\(row)")

        // With a counting limit below the backlog the figure is an estimate, and says so.
        try consumer.commit([TopicPartitionOffset(topic, 0, records[0].offset)])
        row = try #require(try LagProbe(hub: fx.hub, countLimit: 2).lag(group: group, topics: ["commands.tax"]).first)
        #expect(!row.exact && row.lag >= 6, "\(row)")
    }

    /// ListConsumerGroups and DescribeConsumerGroups against the test broker: a subscribed
    /// consumer is a live member; once it leaves, the group has none.
    @Test func groupMembersAreListedAndDescribed() async throws {
        let fx = try OpsFixture(partitions: 2)
        let group = fx.prefix + "dept.tax"
        let assigned = Mutex(false)
        let consumer = try KafkaConsumer(config: fx.hub.kafka(["client.id": "dept-tax-test", "session.timeout.ms": "6000"]), groupId: group,
                                         rebalance: RebalanceListener(onAssigned: { _ in assigned.withLock { $0 = true } }))
        try consumer.subscribe([fx.topic("dept.tax.requests")])
        try await eventually(every: .milliseconds(100), timeout: .seconds(30), "the consumer's assignment") {
            _ = try consumer.poll(maxMessages: 10, timeout: .milliseconds(50))
            return assigned.withLock { $0 }
        }
        let admin = try KafkaAdmin(config: fx.hub.kafka())
        // Tansu 0.6.0 answers ListGroups with no group, so `yishi status` describes the hub's
        // groups by name; an Apache Kafka broker lists this one.
        let listed = try admin.listConsumerGroups()
        #expect(listed.keys.allSatisfy { !$0.isEmpty })
        let live = try #require(try admin.describeConsumerGroups([group, fx.prefix + "nobody"]).first)
        // Tansu leaves client.id and host empty; librdkafka's member id starts with the client.id.
        #expect(live.members.count == 1 && (live.members[0].clientId == "dept-tax-test" || live.members[0].memberId.hasPrefix("dept-tax-test-")),
                "\(live)")
        try consumer.close()
        var after: [ConsumerGroupDescription] = []
        try await eventually(every: .milliseconds(200), timeout: .seconds(20), "the member gone") {
            after = try admin.describeConsumerGroups([group, fx.prefix + "nobody"])
            return after[0].members.isEmpty
        }
        #expect(after[1].members.isEmpty)
    }
}
