import Adapters
import DepartmentService
import Departments
import Foundation
import Messaging
import Orchestrator
import SagaEngine
import Synchronization
import Testing
import YishiKafka
import YishiTestSupport

/// The services' loops against librdkafka's mock cluster with injected EndTxn / AddOffsetsToTxn /
/// TxnOffsetCommit / OffsetCommit / Produce faults: each error class gets its reaction (resume,
/// abort and redo, rebuild) and the service keeps running. One mock broker, so that it is every
/// coordinator and every fault lands. The mock stores no transactional offsets, so a rewind
/// reads the input again from the beginning: the checks count reactions and transactions.
@Suite("Service loops under transaction faults (librdkafka mock cluster)", .serialized)
struct TransactionFaultTests {
    static let policy = TransactionPolicy(resumeWindow: .seconds(20), outageLimit: .seconds(60), backoff: .milliseconds(50), callTimeout: .seconds(2))

    static func connection(_ cluster: MockCluster) throws -> HubConnection {
        var connection = HubConnection(bootstrap: cluster.bootstrapServers)
        connection.prefix = uniqueName("f") + "."
        connection.partitions = 1
        connection.kafka = ["log_level": "0"]
        connection.sessionTimeoutMs = 6000
        connection.transactionPolicy = policy
        for spec in HubTopics.all(prefix: connection.prefix, partitions: 1, agencies: try hubAgencies().map(\.rawValue)) { try cluster.createTopic(spec.name, partitions: spec.partitions) }
        return connection
    }

    /// A record that fails its checks (no CloudEvents headers): the service dead-letters it in a transaction.
    static func poison(_ topic: String, _ producer: KafkaProducer) throws {
        try producer.enqueue(ProducerRecord(topic: topic, key: "APP-poison", value: Data("not a message".utf8)))
        try producer.flush()
    }

    /// Injects `fault`, sends one poison record, and waits until a transaction commits after it.
    static func step(_ name: String, transactions: () -> Int, send: () throws -> Void, fault: () throws -> Void,
                     failure: () -> String?) async throws {
        let before = transactions()
        try fault()
        try send()
        try await eventually(every: .milliseconds(100), timeout: .seconds(40), "\(name): a transaction commits after the fault") {
            transactions() > before || failure() != nil
        }
        #expect(failure() == nil, "\(name): the loop stopped: \(failure() ?? "")")
    }

    @Test("the bank adapter resumes a timed-out commit, aborts and redoes on abortable errors, rebuilds on a fatal one, and keeps running",
          .timeLimit(.minutes(3)))
    func adapter() async throws {
        let cluster = try MockCluster(brokers: 1)
        let connection = try Self.connection(cluster)
        let adapter = try AdapterService(agency: "bank", connection: connection, instanceId: "a1", repository: repoRoot,
                                         log: JSONLog(component: "adapter.bank", minimum: .error))
        let runner = BackgroundService("adapter", run: adapter.run, stop: adapter.stop)
        defer { runner.stop() }
        let feeder = try KafkaProducer(config: connection.clientConfig(clientId: "feeder"))
        let topic = connection.topic("commands.bank")
        func step(_ name: String, _ fault: () throws -> Void) async throws {
            try await Self.step(name, transactions: { adapter.counts.transactions }, send: { try Self.poison(topic, feeder) },
                                fault: fault, failure: { runner.failure })
        }
        try await step("warm-up") {}
        try await step("EndTxn late") { try cluster.delayNextRequests(.endTxn, broker: 1, [(.none, 3500)]) }
        #expect(adapter.counts.kafka.retries >= 1 && adapter.counts.kafka.aborts == 0, "\(adapter.counts.kafka)")
        try await step("AddOffsetsToTxn abortable") { try cluster.delayNextRequests(.addOffsetsToTxn, broker: 1, [(.groupAuthorizationFailed, 0)]) }
        #expect(adapter.counts.kafka.aborts == 1 && adapter.counts.aborted == 1, "\(adapter.counts)")
        try await step("TxnOffsetCommit abortable") { try cluster.delayNextRequests(.txnOffsetCommit, broker: 1, [(.groupAuthorizationFailed, 0)]) }
        #expect(adapter.counts.kafka.aborts == 2, "\(adapter.counts.kafka)")
        try await step("EndTxn fatal") { try cluster.delayNextRequests(.endTxn, broker: 1, [(.invalidTxnState, 0)]) }
        #expect(adapter.counts.kafka.rebuilds == 1 && adapter.counts.kafka.unknownOutcomes == 1, "\(adapter.counts.kafka)")
        // Dead letters were written by committed transactions after every fault.
        #expect(adapter.counts.deadLetters >= 5)
    }

    @Test("the orchestrator resumes, aborts and redoes, rebuilds and re-reads its sagas on an unknown outcome, and keeps running",
          .timeLimit(.minutes(3)))
    func orchestrator() async throws {
        let cluster = try MockCluster(brokers: 1)
        let connection = try Self.connection(cluster)
        let service = try OrchestratorService(config: OrchestratorConfig(connection: connection, instanceId: "o1", repository: repoRoot),
                                              log: JSONLog(component: "orchestrator", minimum: .error))
        let runner = BackgroundService("orchestrator", run: service.run, stop: service.stop)
        defer { runner.stop() }
        try await eventually(every: .milliseconds(100), timeout: .seconds(30), "the orchestrator owns its partition") {
            service.stats.ownedPartitions == [0] || runner.failure != nil
        }
        let feeder = try KafkaProducer(config: connection.clientConfig(clientId: "feeder"))
        let topic = connection.topic("applications")
        func step(_ name: String, _ fault: () throws -> Void) async throws {
            try await Self.step(name, transactions: { service.stats.transactions }, send: { try Self.poison(topic, feeder) },
                                fault: fault, failure: { runner.failure })
        }
        try await step("warm-up") {}
        try await step("EndTxn late") { try cluster.delayNextRequests(.endTxn, broker: 1, [(.none, 3500)]) }
        #expect(service.stats.kafka.retries >= 1 && service.stats.kafka.aborts == 0, "\(service.stats.kafka)")
        try await step("AddOffsetsToTxn abortable") { try cluster.delayNextRequests(.addOffsetsToTxn, broker: 1, [(.groupAuthorizationFailed, 0)]) }
        #expect(service.stats.kafka.aborts == 1, "\(service.stats.kafka)")
        try await step("TxnOffsetCommit abortable") { try cluster.delayNextRequests(.txnOffsetCommit, broker: 1, [(.groupAuthorizationFailed, 0)]) }
        #expect(service.stats.kafka.aborts == 2, "\(service.stats.kafka)")
        try await step("EndTxn fatal") { try cluster.delayNextRequests(.endTxn, broker: 1, [(.invalidTxnState, 0)]) }
        #expect(service.stats.kafka.rebuilds == 1 && service.stats.stateReloads == 1, "\(service.stats)")
        #expect(service.stats.ownedPartitions == [0])
        #expect(service.stats.deadLetters >= 5)
    }

    @Test("a department carries on through a failed offset commit and a failed delivery, losing nothing", .timeLimit(.minutes(2)))
    func department() async throws {
        let cluster = try MockCluster(brokers: 1)
        let connection = try Self.connection(cluster)
        let reference = try ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))
        let calendar = try BusinessCalendar.load(repoRoot.appendingPathComponent("seeds/calendar/cn-mainland.json"))
        let service = try DepartmentService(agency: .bank, connection: connection, instanceId: "d1",
                                            endpoint: makeDepartment(.bank, reference: reference, preset: .default, seed: 1)!,
                                            calendar: calendar, stateFile: nil, log: JSONLog(component: "dept.bank", minimum: .error))
        let runner = BackgroundService("department", run: service.run, stop: service.stop)
        defer { runner.stop() }
        let feeder = try KafkaProducer(config: connection.clientConfig(clientId: "feeder"))
        let topic = connection.topic("dept.bank.requests")
        // A request from a source other than the bank adapter: dead-lettered, then its offset committed.
        try Self.poison(topic, feeder)
        try await eventually(every: .milliseconds(100), timeout: .seconds(30), "the first request handled") {
            service.counts.deadLetters == 1 || runner.failure != nil
        }
        cluster.failNextRequests(.offsetCommit, with: [.groupAuthorizationFailed])
        try Self.poison(topic, feeder)
        try await eventually(every: .milliseconds(100), timeout: .seconds(30), "the failed offset commit counted") {
            service.counts.commitFailures == 1 || runner.failure != nil
        }
        #expect(runner.failure == nil, "\(runner.failure ?? "")")
        // The feeder's Produce request passes; the next one (the department's dead letter) fails
        // permanently: the record comes back to the loop and is sent again.
        try cluster.delayNextRequests(.produce, broker: 1, [(.none, 0), (.topicAuthorizationFailed, 0)])
        try Self.poison(topic, feeder)
        try await eventually(every: .milliseconds(100), timeout: .seconds(30), "the failed delivery sent again") {
            service.counts.redelivered >= 1 || runner.failure != nil
        }
        #expect(runner.failure == nil, "\(runner.failure ?? "")")
        let letters = try await readAll(connection.topic("dlq"), partitions: 1, expecting: 3, config: connection.clientConfig(clientId: "reader"),
                                        isolation: "read_uncommitted", timeout: .seconds(10))
        #expect(letters.count >= 3, "dead letters delivered: \(letters.count); \(service.counts)")
    }
}
