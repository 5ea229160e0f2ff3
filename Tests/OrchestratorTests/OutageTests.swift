import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// Time the hub could not act must not count against step retries: a step timeout that passed
/// while the broker was away fires only after the answers sent once it is back are read.
@Suite("Orchestrator through a broker outage (librdkafka mock cluster)", .serialized)
struct OutageTests {
    @Test("a step timeout that passed while no transaction could commit does not fire before the answer sent after the outage",
          .timeLimit(.minutes(3)))
    func outageDoesNotBurnARetry() async throws {
        let cluster = try MockCluster(brokers: 1)
        var connection = HubConnection(bootstrap: cluster.bootstrapServers)
        connection.prefix = uniqueName("o") + "."
        connection.partitions = 1
        connection.kafka = ["log_level": "0"]
        connection.sessionTimeoutMs = 30_000  // the outage must not cost the orchestrator its partition
        connection.transactionPolicy = TransactionPolicy(resumeWindow: .seconds(3), outageLimit: .seconds(120),
                                                         backoff: .milliseconds(100), callTimeout: .seconds(1))
        // 600 virtual seconds per real second, no working hours: a 30-minute step timeout is 3 s.
        let start = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        connection.clock = HubClock(start: start, speed: 600)
        for spec in HubTopics.all(prefix: connection.prefix, partitions: 1, agencies: try hubAgencies()) { try cluster.createTopic(spec.name, partitions: 1) }
        let orchestrator = try BackgroundOrchestrator(OrchestratorConfig(connection: connection, instanceId: "o1", repository: repoRoot))
        defer { orchestrator.stop() }
        try await eventually(every: .milliseconds(100), timeout: .seconds(30), "the orchestrator owns its partition") {
            orchestrator.service.stats.ownedPartitions == [0] || orchestrator.failure != nil
        }

        let producer = try KafkaProducer(config: connection.clientConfig(clientId: "applicant"))
        let form = try #require(try SeedApplications.valid(repoRoot: repoRoot, limit: 1).first)
        let sagaId = try #require(form["applicationId"]?.stringValue)
        try SeedApplications.submit([form], topicPrefix: connection.prefix, producer: producer, time: connection.clock.now().date)
        let commandTopics = try hubAgencies().map { connection.topic("commands.\($0)") }
        let reader = try KafkaConsumer(config: connection.consumerConfig(clientId: "reader", ["isolation.level": "read_uncommitted"]),
                                       groupId: uniqueName("reader"))
        try reader.assign(commandTopics.map { TopicPartitionOffset($0, 0, TopicPartitionOffset.beginning) })
        var commands: [JSONValue] = []
        func readCommands(until done: ([JSONValue]) -> Bool, timeout: Duration) throws -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                for m in try reader.poll(maxMessages: 100, timeout: .milliseconds(100)) {
                    if let c = try? JSONValue.parse(m.value ?? Data()) { commands.append(c) }
                }
                if done(commands) { return true }
            }
            return false
        }
        #expect(try readCommands(until: { !$0.isEmpty }, timeout: .seconds(30)), "the first step was not dispatched")
        let first = try #require(commands.first)
        let step = try #require(first["step"]?.stringValue)
        let agency = try #require(first["agency"]?.stringValue)
        let action = try #require(first["action"]?.stringValue)
        #expect(first["attempt"]?.doubleValue == 1)

        // The broker goes away for 6 s: the step's timeout (3 s) passes meanwhile and the timer
        // fires into transactions that cannot commit.
        try cluster.setBrokerDown(1)
        try await Task.sleep(for: .seconds(6))
        try cluster.setBrokerUp(1)
        // Something to commit once the broker is back (a record that fails its checks): the first
        // committed transaction ends the outage. The timer is overdue by then.
        try producer.enqueue(ProducerRecord(topic: connection.topic("applications"), key: sagaId, value: Data("not a message".utf8)))
        try await eventually(every: .milliseconds(50), timeout: .seconds(60), "a transaction commits after the outage") {
            orchestrator.service.stats.outages >= 1 && orchestrator.service.stats.deadLetters >= 1 || orchestrator.failure != nil
        }
        // The department's answer to attempt 1 comes a second later (the adapter and department
        // catching up), after the deadline that passed during the outage.
        try await Task.sleep(for: .seconds(1))
        let catalogues = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters"))
        let outputs = catalogues.agencies[agency]?.actions.first { $0.id == action }?.outputs ?? []
        let body: [String: JSONValue] = ["sagaId": .string(sagaId), "step": .string(step), "attempt": .number(1),
                                         "requestId": first["requestId"] ?? .string("?"),
                                         "outputs": .object(Dictionary(uniqueKeysWithValues: outputs.map { ($0.name, fakeOutput($0.name, saga: sagaId)) }))]
        let envelope = Envelope(source: "/yishi/adapters/\(agency)", type: MessageType.stepSucceeded, time: connection.clock.now().date,
                                subject: sagaId, sagaId: sagaId, step: step, attempt: 1)
        _ = try await producer.send(envelope.record(topic: connection.topic("events.\(agency)"), key: sagaId,
                                                    data: Data(JSONValue.object(body).text().utf8)))

        // The saga moves on to its next step on attempt 1's answer; the step was never retried.
        let movedOn = try readCommands(until: { $0.contains { $0["step"]?.stringValue != step } }, timeout: .seconds(60))
        #expect(movedOn, "the saga did not move on after the outage: \(commands.map { "\($0["step"]?.stringValue ?? "?")#\($0["attempt"]?.doubleValue ?? 0)" })")
        let retries = commands.filter { $0["step"]?.stringValue == step && ($0["attempt"]?.doubleValue ?? 1) > 1 }.compactMap { $0["attempt"]?.doubleValue }
        #expect(retries.isEmpty, "\(step) was retried for the outage: attempts \(retries)")
        #expect(orchestrator.failure == nil, "\(orchestrator.failure ?? "")")
        let stats = orchestrator.service.stats
        #expect(stats.kafka.commits > 0 && (stats.kafka.retries + stats.kafka.rebuilds + stats.kafka.aborts) > 0,
                "the outage left no trace in the transaction counts: \(stats.kafka)")
        try? reader.close()

        // The audit chain came through the failed and retried transactions: what was committed on
        // saga-events (read_committed) links from the genesis, record by record, with no gap.
        let events = try KafkaConsumer(config: connection.consumerConfig(clientId: "chain", ["isolation.level": "read_committed"]),
                                       groupId: uniqueName("chain"))
        try events.assign([TopicPartitionOffset(connection.topic("saga-events"), 0, TopicPartitionOffset.beginning)])
        var records: [KafkaMessage] = []
        var quietSince = ContinuousClock.now
        while ContinuousClock.now - quietSince < .seconds(1) {
            let batch = try events.poll(maxMessages: 500, timeout: .milliseconds(100))
            if !batch.isEmpty { records += batch; quietSince = .now }
        }
        try? events.close()
        let bundleId = try #require(form["bundle"]?.stringValue)
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        var head = AuditChainHead.start(sagaId: sagaId, bundleVersion: try #require(library.newest(bundleId)).version, algorithm: .sm3)
        for m in records where m.keyString == sagaId {
            #expect(m.headers.string(AuditChain.Header.previous) == head.link, "a gap in the chain before offset \(m.offset)")
            let (_, link) = head.append(type: m.headers.string(Envelope.Header.type) ?? "", key: sagaId, value: [UInt8](m.value ?? Data()))
            #expect(m.headers.string(AuditChain.Header.link) == link && m.headers.string(AuditChain.Header.algorithm) == "sm3")
        }
        #expect(head.length >= 3, "saga-events holds \(records.count) record(s)")
    }
}
