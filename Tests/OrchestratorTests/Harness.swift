import Foundation
import Messaging
import Orchestrator
import SagaEngine
import Synchronization
import YishiKafka
import YishiTestSupport

/// The repository root (for seeds, adapters and schemas).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A hub on its own topic prefix: config, a virtual clock, helpers to submit and observe.
struct TestHub {
    let prefix: String
    let partitions: Int32
    let clock: HubClock
    let bootstrap: String

    init(partitions: Int32 = 3) throws {
        prefix = uniqueName("t") + "."
        self.partitions = partitions
        // 09:00 on a Monday working day; 120 virtual seconds per real second.
        clock = HubClock(start: Instant(rfc3339: "2026-03-02T09:00:00+08:00")!, speed: 120)
        bootstrap = try Broker.bootstrap
    }

    func config(instance: String) -> OrchestratorConfig {
        var config = OrchestratorConfig(bootstrap: bootstrap, instanceId: instance, repository: repoRoot)
        config.topicPrefix = prefix
        config.partitions = partitions
        config.groupId = prefix + "orchestrator"
        config.clock = clock
        config.sessionTimeoutMs = 6000
        config.kafka = ["log_level": "3"]
        return config
    }

    func topic(_ name: String) -> String { prefix + name }

    func kafka(_ extra: [String: String] = [:]) -> KafkaConfig {
        KafkaConfig(bootstrapServers: bootstrap, extra.merging(["log_level": "3", "partitioner": "murmur2_random"]) { a, _ in a })
    }

    func ensureTopics() throws {
        try KafkaAdmin(config: kafka()).ensureTopics(HubTopics.all(prefix: prefix, partitions: partitions))
    }

    /// Seed applications expected to complete, with the bundle rewritten where asked.
    static func validApplications(limit: Int) throws -> [JSONValue] {
        let manifest = try JSONValue.parse(Data(contentsOf: repoRoot.appendingPathComponent("seeds/applications/manifest.json")))
        let lines = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        var result: [JSONValue] = []
        for line in lines {
            let form = try JSONValue.parse(String(line))
            guard let id = form["applicationId"]?.stringValue,
                  manifest["applications"]?[id]?["expected"]?.stringValue == "complete" else { continue }
            result.append(form)
            if result.count == limit { break }
        }
        return result
    }

    func submit(_ forms: [JSONValue], producer: KafkaProducer) throws {
        for form in forms {
            let id = form["applicationId"]!.stringValue!
            let envelope = Envelope(source: "/frontdesk/test", type: MessageType.applicationSubmitted, time: clock.now().date, subject: id)
            try producer.enqueue(envelope.record(topic: topic("applications"), key: id, data: Data(form.text().utf8)))
        }
        try producer.flush()
    }
}

extension Instant {
    var date: Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}

/// Stand-in for the five adapters: answers every command on `commands.*` with
/// success (outputs named after the catalogue) or, for chosen steps, a failure.
final class ScriptedResponders: Sendable {
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let answered = Recorder<String>()
    private let stream: Mutex<Task<Void, Never>?> = Mutex(nil)

    /// `failStep`: step ids whose first attempt fails technically (retryable `UNAVAILABLE`).
    init(hub: TestHub, failFirstAttemptOf failStep: Set<String> = []) throws {
        let catalogues = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters"))
        consumer = try KafkaConsumer(config: hub.kafka(["session.timeout.ms": "6000"]), groupId: hub.prefix + "responders")
        producer = try KafkaProducer(config: hub.kafka())
        try consumer.subscribe(HubTopics.defaultAgencies.map { hub.topic("commands.\($0)") })
        let messages = consumer.messages()
        let producer = self.producer, answered = self.answered
        stream.withLock {
            $0 = Task.detached {
                do {
                    for try await batch in messages {
                        for message in batch {
                            guard let command = try? JSONValue.parse(message.value ?? Data()),
                                  let type = message.headers.string(Envelope.Header.type),
                                  let saga = command["sagaId"]?.stringValue, let step = command["step"]?.stringValue,
                                  let agency = command["agency"]?.stringValue, let action = command["action"]?.stringValue,
                                  let attempt = command["attempt"]?.doubleValue else { continue }
                            var body: [String: JSONValue] = ["sagaId": .string(saga), "step": .string(step), "attempt": .number(attempt),
                                                             "requestId": command["requestId"] ?? .string("?")]
                            let replyType: String
                            if type == MessageType.compensationRequested {
                                replyType = MessageType.compensationSucceeded
                            } else if failStep.contains(step) && attempt == 1 {
                                replyType = MessageType.stepFailed
                                body["code"] = .string("UNAVAILABLE"); body["message"] = .string("scripted outage")
                            } else {
                                replyType = MessageType.stepSucceeded
                                let outputs = catalogues.agencies[agency]?.actions.first { $0.id == action }?.outputs ?? []
                                body["outputs"] = .object(Dictionary(uniqueKeysWithValues: outputs.map { ($0.name, JSONValue.string("\($0.name)-\(saga)")) }))
                            }
                            let envelope = Envelope(source: "/yishi/adapters/\(agency)", type: replyType, time: hub.clock.now().date,
                                                    subject: saga, sagaId: saga, step: step, attempt: Int(attempt))
                            try? producer.enqueue(envelope.record(topic: hub.topic("events.\(agency)"), key: saga,
                                                                  data: Data(JSONValue.object(body).text().utf8)))
                            answered.append("\(saga)/\(step)/\(Int(attempt))")
                        }
                    }
                } catch {}
            }
        }
    }

    func close() {
        try? consumer.close()
        stream.withLock { $0?.cancel() }
        try? producer.flush()
    }
}

/// Runs an orchestrator on a dedicated thread (its loop blocks).
final class RunningOrchestrator: Sendable {
    let service: OrchestratorService
    private let done = DispatchSemaphore(value: 0)
    let failure = Recorder<String>()

    init(_ config: OrchestratorConfig) throws {
        service = try OrchestratorService(config: config, log: JSONLog(component: "orchestrator", minimum: .error))
        let thread = Thread { [service, done, failure] in
            do { try service.run() } catch { failure.append("\(error)") }
            done.signal()
        }
        thread.name = "test.orchestrator"
        thread.start()
    }

    func stop() {
        service.stop()
        done.wait()
    }
}

/// Finished sagas by id, from `saga-events`.
func finishedSagas(hub: TestHub, expecting count: Int, timeout: Duration) async throws -> [String: String] {
    let messages = try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max,
                                     config: hub.kafka(), timeout: timeout, until: { messages in
        messages.filter { $0.headers.string(Envelope.Header.type) == MessageType.sagaFinished }.count >= count
    })
    var finished: [String: String] = [:]
    for message in messages where message.headers.string(Envelope.Header.type) == MessageType.sagaFinished {
        let body = try JSONValue.parse(message.value ?? Data())
        finished[body["sagaId"]!.stringValue!] = body["status"]?.stringValue
    }
    return finished
}
