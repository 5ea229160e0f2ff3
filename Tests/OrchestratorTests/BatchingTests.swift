import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// Issue 11, step latency: a batch is what is already fetched when the loop is ready for it.
/// An input never waits for a batch to fill (librdkafka's batch consume alone waits for
/// `maxMessages` or the whole timeout), and a backlog still drains in full batches of at most
/// `maxBatch` inputs.
@Suite("Batches: no waiting for a full batch; a backlog drains in bounded full batches", .serialized)
struct BatchingTests {
    @Test("poll returns the first record without waiting for maxMessages; a backlog comes in full batches of maxMessages",
          .timeLimit(.minutes(1)))
    func pollDoesNotWaitForAFullBatch() throws {
        let hub = try TestHub(partitions: 1)
        let topic = hub.topic("poll")
        try KafkaAdmin(config: hub.kafka()).ensureTopics([TopicSpec(topic, partitions: 1)])
        let producer = try KafkaProducer(config: hub.kafka())
        let consumer = try KafkaConsumer(config: hub.kafka(["fetch.wait.max.ms": "10"]), groupId: hub.prefix + "poll")
        defer { try? consumer.close() }
        try consumer.assign([TopicPartitionOffset(topic, 0, TopicPartitionOffset.beginning)])
        try producer.enqueue(ProducerRecord(topic: topic, key: "k", value: Data("one".utf8)))
        try producer.flush(timeout: .seconds(10))
        // One record and room for 1,000: `fill` (librdkafka's batch call) would wait the whole 8 s for 999 more.
        let start = ContinuousClock.now
        let first = try consumer.poll(maxMessages: 1000, timeout: .seconds(8), fill: false)
        let waited = ContinuousClock.now - start
        #expect(first.count == 1, "got \(first.count) records")
        #expect(waited < .seconds(4), "poll waited \(waited) for a batch to fill")

        // A backlog of 300 records read 100 at a time: never more than 100, and full batches.
        for i in 0..<300 { try producer.enqueue(ProducerRecord(topic: topic, key: "k", value: Data(String(i).utf8))) }
        try producer.flush(timeout: .seconds(10))
        var batches: [Int] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while batches.reduce(0, +) < 300, ContinuousClock.now < deadline {
            let batch = try consumer.poll(maxMessages: 100, timeout: .seconds(2), fill: false)
            if !batch.isEmpty { batches.append(batch.count) }
        }
        #expect(batches.reduce(0, +) == 300, "read \(batches.reduce(0, +)) of 300: \(batches)")
        #expect(batches.allSatisfy { $0 <= 100 }, "a batch above maxMessages: \(batches)")
        #expect(batches.filter { $0 == 100 }.count >= 2, "the backlog did not drain in full batches: \(batches)")
    }

    @Test("a backlog of applications is committed in transactions of maxBatch inputs, none larger", .timeLimit(.minutes(2)))
    func backlogDrainsInFullBoundedBatches() async throws {
        let hub = try TestHub(partitions: 2)
        try hub.ensureTopics()
        let producer = try KafkaProducer(config: hub.kafka())
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: 120, tag: "batch")
        try hub.submit(forms, producer: producer)
        try producer.flush(timeout: .seconds(10))
        var config = hub.config(instance: "o1")
        config.maxBatch = 40
        let orchestrator = try BackgroundOrchestrator(config)
        orchestrator.service.traceBatches = true
        defer { orchestrator.stop() }
        let deadline = ContinuousClock.now + .seconds(60)
        while orchestrator.service.stats.inputs < forms.count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(orchestrator.service.stats.inputs == forms.count, "\(orchestrator.service.stats.inputs) of \(forms.count) inputs committed")
        let turns = orchestrator.service.recentBatches.filter { $0.inputs > 0 }
        let sizes = turns.map(\.inputs)
        #expect(sizes.reduce(0, +) == forms.count, "inputs per transaction \(sizes)")
        #expect(sizes.allSatisfy { $0 <= 40 }, "a transaction above maxBatch: \(sizes)")
        #expect(sizes.filter { $0 == 40 }.count >= 2, "the backlog did not drain in full batches: \(sizes)")
        // Each turn's breakdown adds up: its phases fit in it, and its transaction wrote records.
        for turn in turns {
            #expect(turn.committedAt != nil && turn.records > 0 && turn.commit > 0)
            let phases = turn.pollWait + turn.gather + turn.process + turn.timers + turn.encode + turn.build + turn.commit + turn.install + turn.snapshot
            #expect(phases <= turn.total + 0.001, "phases \(phases) s > turn \(turn.total) s")
        }
        #expect(orchestrator.failure == nil)
    }
}
