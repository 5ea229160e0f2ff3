import Foundation
import Synchronization
import Testing
import YishiKafka
import YishiTestSupport

/// What one group member saw, in the order it saw it.
enum MemberEvent: Sendable {
    case assigned([TopicPartition])
    case revoked([TopicPartition])
    case message(TopicPartition)
}

final class Member: Sendable {
    let name: String
    let events = Recorder<MemberEvent>()
    let consumer: KafkaConsumer
    private let collector = Mutex<Task<Void, Never>?>(nil)

    init(_ name: String, group: String, topic: String) throws {
        self.name = name
        let events = self.events
        consumer = try KafkaConsumer(
            config: try Broker.config(["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]),
            groupId: group,
            rebalance: RebalanceListener(
                onAssigned: { events.append(.assigned($0)) },
                onRevoked: { partitions, _ in events.append(.revoked(partitions)) }))
        try consumer.subscribe([topic])
        let stream = consumer.messages()
        collector.withLock {
            $0 = Task { do { for try await batch in stream { for m in batch { events.append(.message(m.topicPartition)) } } } catch {} }
        }
    }

    /// Current assignment as the hooks told it.
    var owned: Set<TopicPartition> {
        var owned = Set<TopicPartition>()
        for event in events.all {
            switch event {
            case .assigned(let p): owned.formUnion(p)
            case .revoked(let p): owned.subtract(p)
            case .message: break
            }
        }
        return owned
    }

    var revocations: Int { events.all.filter { if case .revoked = $0 { true } else { false } }.count }

    /// Every message came from a partition the hooks had assigned before it.
    func checkMessagesFollowAssignment() {
        var owned = Set<TopicPartition>()
        for event in events.all {
            switch event {
            case .assigned(let p): owned.formUnion(p)
            case .revoked(let p): owned.subtract(p)
            case .message(let tp): #expect(owned.contains(tp), "\(name) got a message of \(tp) outside its assignment \(owned)")
            }
        }
    }

    func close() { try? consumer.close(); collector.withLock { $0?.cancel() } }
}

@Suite("Consumer groups on Tansu", .serialized)
struct GroupTests {
    @Test("two members split the partitions; a third joining triggers revoke and assign hooks", .timeLimit(.minutes(2)))
    func groupSplitAndRebalance() async throws {
        let topic = uniqueName("group")
        let group = uniqueName("g")
        let admin = try KafkaAdmin(config: try Broker.config())
        try await admin.ensureTopics([TopicSpec(topic, partitions: 6)])
        let all = Set((0..<6).map { TopicPartition(topic, Int32($0)) })
        let producer = try KafkaProducer(config: try Broker.config())
        func produce(_ n: Int) throws {
            for i in 0..<n { try producer.enqueue(ProducerRecord(topic: topic, partition: Int32(i % 6), key: "k\(i)", value: Data("\(i)".utf8))) }
            try producer.flush()
        }
        try produce(60)

        let a = try Member("a", group: group, topic: topic)
        let b = try Member("b", group: group, topic: topic)
        defer { a.close(); b.close() }
        try await eventually(timeout: .seconds(40), "a and b share all 6 partitions") {
            !a.owned.isEmpty && !b.owned.isEmpty && a.owned.isDisjoint(with: b.owned) && a.owned.union(b.owned) == all
        }
        let revocationsBefore = a.revocations + b.revocations
        let c = try Member("c", group: group, topic: topic)
        defer { c.close() }
        try await eventually(timeout: .seconds(40), "a, b and c share all 6 partitions") {
            let owned = [a.owned, b.owned, c.owned]
            return owned.allSatisfy { !$0.isEmpty } && owned.reduce(0) { $0 + $1.count } == 6
                && owned.reduce(Set()) { $0.union($1) } == all
        }
        #expect(a.revocations + b.revocations > revocationsBefore, "c joining revoked nothing from a or b")
        try produce(60)
        try await eventually(timeout: .seconds(20), "c receives messages of its new partitions") {
            c.events.all.contains { if case .message = $0 { true } else { false } }
        }
        for member in [a, b, c] { member.checkMessagesFollowAssignment() }
    }

    @Test("close leaves the group cleanly: the remaining member takes over at once", .timeLimit(.minutes(2)))
    func cleanLeave() async throws {
        let topic = uniqueName("leave")
        let group = uniqueName("g")
        let admin = try KafkaAdmin(config: try Broker.config())
        try await admin.ensureTopics([TopicSpec(topic, partitions: 4)])
        let all = Set((0..<4).map { TopicPartition(topic, Int32($0)) })
        let a = try Member("a", group: group, topic: topic)
        let b = try Member("b", group: group, topic: topic)
        defer { a.close() }
        try await eventually(timeout: .seconds(40), "a and b both own partitions") { !a.owned.isEmpty && !b.owned.isEmpty }
        let start = ContinuousClock.now
        b.close()
        try await eventually(timeout: .seconds(30), "a owns all partitions after b left") { a.owned == all }
        // Far below the 6 s session timeout: b left with a LeaveGroup, it did not just vanish.
        #expect(ContinuousClock.now - start < .seconds(6))
    }

    @Test("manual commit of explicit offsets, seek, pause and resume")
    func commitSeekPause() async throws {
        let topic = uniqueName("commit")
        let group = uniqueName("g")
        let admin = try KafkaAdmin(config: try Broker.config())
        try await admin.ensureTopics([TopicSpec(topic, partitions: 1)])
        let producer = try KafkaProducer(config: try Broker.config())
        // One record per produce request: Tansu 0.6 reports the high watermark of a
        // multi-record batch as its base offset + 1, so batches would hide the check.
        for i in 0..<10 { _ = try await producer.send(ProducerRecord(topic: topic, value: Data("\(i)".utf8))) }

        let consumer = try KafkaConsumer(config: try Broker.config(), groupId: group)
        let tp = TopicPartition(topic, 0)
        try consumer.assign([TopicPartitionOffset(topic, 0, TopicPartitionOffset.beginning)])
        let first = try await offloadPoll(consumer, until: 10)
        #expect(first.map(\.offset) == Array(0..<10))
        try consumer.commit([TopicPartitionOffset(topic, 0, 4)])
        #expect(try consumer.committed([tp]).first?.offset == 4)
        let (low, high) = try consumer.watermarks(tp)
        #expect(low == 0 && high == 10, "watermarks \(low) \(high)")

        try consumer.seek([TopicPartitionOffset(topic, 0, 7)])
        let afterSeek = try await offloadPoll(consumer, until: 3)
        #expect(afterSeek.map(\.offset) == [7, 8, 9])

        try consumer.pause([tp])
        try producer.enqueue(ProducerRecord(topic: topic, value: Data("10".utf8)))
        try producer.flush()
        let whilePaused = try await offloadPoll(consumer, until: 1, timeout: .seconds(2))
        #expect(whilePaused.isEmpty, "a paused partition delivered \(whilePaused.map(\.offset))")
        try consumer.resume([tp])
        let afterResume = try await offloadPoll(consumer, until: 1)
        #expect(afterResume.map(\.offset) == [10])
        try consumer.close()
    }
}

extension GroupTests {
    @Test("the end of each partition is reported with the next offset to read")
    func partitionEnd() async throws {
        let topic = uniqueName("eof")
        let admin = try KafkaAdmin(config: try Broker.config())
        try await admin.ensureTopics([TopicSpec(topic, partitions: 2)])
        let producer = try KafkaProducer(config: try Broker.config())
        for i in 0..<3 { _ = try await producer.send(ProducerRecord(topic: topic, partition: 0, value: Data("\(i)".utf8))) }
        let consumer = try KafkaConsumer(config: try Broker.config(["enable.partition.eof": "true"]), groupId: uniqueName("g"))
        let ends = Recorder<TopicPartitionOffset>()
        consumer.onPartitionEnd { ends.append($0) }
        try consumer.assign([TopicPartitionOffset(topic, 0, TopicPartitionOffset.beginning),
                             TopicPartitionOffset(topic, 1, TopicPartitionOffset.beginning)])
        let messages = try await offloadPoll(consumer, until: 3)
        #expect(messages.map(\.offset) == [0, 1, 2])
        _ = try await offloadPoll(consumer, until: 1, timeout: .seconds(2))
        #expect(Set(ends.all) == [TopicPartitionOffset(topic, 0, 3), TopicPartitionOffset(topic, 1, 0)])
        try consumer.close()
    }
}

