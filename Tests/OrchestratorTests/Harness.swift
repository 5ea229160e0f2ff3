import Foundation
import Messaging
import Orchestrator
import SagaEngine
import Synchronization
import YishiKafka
import YishiTestSupport
import HubTestKit

/// The repository root (for seeds, adapters and schemas).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A hub on its own topic prefix: config, a virtual clock, helpers to submit and observe.
struct TestHub {
    let prefix: String
    let partitions: Int32
    let clock: HubClock
    let bootstrap: String

    init(partitions: Int32 = 3, speed: Double = 120, start: String = "2026-03-02T09:00:00+08:00") throws {
        prefix = uniqueName("t") + "."
        self.partitions = partitions
        // By default 09:00 on a Monday working day, 120 virtual seconds per real second.
        clock = HubClock(start: Instant(rfc3339: start)!, speed: speed)
        bootstrap = try Broker.bootstrap
    }

    func config(instance: String) -> OrchestratorConfig {
        var connection = HubConnection(bootstrap: bootstrap)
        connection.prefix = prefix
        connection.partitions = partitions
        connection.clock = clock
        connection.sessionTimeoutMs = 6000
        connection.kafka = ["log_level": "3"]
        return OrchestratorConfig(connection: connection, instanceId: instance, repository: repoRoot)
    }

    func topic(_ name: String) -> String { prefix + name }

    func kafka(_ extra: [String: String] = [:]) -> KafkaConfig {
        KafkaConfig(bootstrapServers: bootstrap, extra.merging(["log_level": "3", "partitioner": "murmur2_random"]) { a, _ in a })
    }

    func ensureTopics() throws {
        try KafkaAdmin(config: kafka()).ensureTopics(HubTopics.all(prefix: prefix, partitions: partitions, agencies: try hubAgencies()))
    }

    static func validApplications(limit: Int) throws -> [JSONValue] {
        try SeedApplications.valid(repoRoot: repoRoot, limit: limit)
    }

    func submit(_ forms: [JSONValue], producer: KafkaProducer) throws {
        try SeedApplications.submit(forms, topicPrefix: prefix, producer: producer, time: clock.now().date)
    }
}

extension TestHub {
    func responders(failFirstAttemptOf steps: Set<String> = [], reject rejected: Set<String> = []) throws -> ScriptedResponders {
        let clock = self.clock
        return try ScriptedResponders(config: kafka(), prefix: prefix,
                                      catalogues: CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")),
                                      failFirstAttemptOf: steps, reject: rejected, now: { clock.now().date })
    }

    /// Sends an operator request (keyed by saga id, or to `partition`) and waits for its reply.
    func ops(_ request: OpsRequest, partition: Int32? = nil, producer: KafkaProducer) async throws -> OpsReply {
        let envelope = Envelope(source: "/yishi/ctl/\(request.by)", type: MessageType.opsRequest, time: clock.now().date,
                                subject: request.requestId)
        var record = try envelope.record(topic: topic("ops"), key: request.sagaId ?? request.requestId, payload: request)
        record.partition = partition
        _ = try await producer.send(record)
        let replies = try await readAll(topic("ops-replies"), partitions: partitions, expecting: .max, config: kafka(),
                                       timeout: .seconds(30), until: { $0.contains { $0.keyString == request.requestId } })
        let reply = try replies.first { $0.keyString == request.requestId }.map { try JSONDecoder().decode(OpsReply.self, from: $0.value!) }
        guard let reply else { throw SetupError("no reply to ops request \(request.requestId)") }
        return reply
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

/// The hub's agencies: every `adapters/*/catalogue.json` (what the orchestrator serves and
/// `ScriptedResponders` answers), so checks over `commands.*` cover every agency.
func hubAgencies() throws -> [String] {
    try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")).ids
}

/// The steps the given forms' sagas run: the newest version of each form's bundle (what a new
/// saga gets; enterprise-opening v2 has eight, v1 seven).
func stepCount(of forms: some Sequence<JSONValue>) throws -> Int {
    let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                         catalogues: repoRoot.appendingPathComponent("adapters"),
                                         calendars: repoRoot.appendingPathComponent("seeds/calendar"))
    return try forms.reduce(0) { n, form in
        guard let bundle = library.newest(form["bundle"]?.stringValue ?? "?") else { throw SetupError("no bundle for \(form["bundle"]?.text() ?? "?")") }
        return n + bundle.steps.count
    }
}
