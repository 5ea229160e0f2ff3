import Foundation
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// Stand-in for the five adapters and their departments, for tests and benchmarks:
/// answers every command on `commands.*` at once with success (outputs named after
/// the catalogue) or, for chosen steps, a retryable failure, and keeps a ledger of
/// the request ids it acted on (departments dedupe by request id).
public final class ScriptedResponders: Sendable {
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    /// Request ids answered with success, per `saga/step` (a department's effect ledger).
    private let ledger = Ledger()
    private let stream: Mutex<Task<Void, Never>?> = Mutex(nil)
    public var effects: [String: Set<String>] { ledger.entries.withLock { $0 } }

    /// `failStep`: step ids whose first attempt fails technically (retryable `UNAVAILABLE`).
    /// - Parameters:
    ///   - config: client settings (bootstrap servers, …)
    ///   - prefix: the hub's topic prefix
    ///   - failFirstAttemptOf: step ids whose first attempt fails technically (retryable `UNAVAILABLE`)
    ///   - now: the hub clock, for `ce_time`
    ///   - reject: step ids the department refuses for a business reason (not retryable)
    ///   - rejectUncorrected: step ids refused until an operator corrects the input (revision 0 is refused)
    ///   - agencies: the agencies it stands in for (default all five; leave one out to run its real adapter and department)
    public init(config: KafkaConfig, prefix: String, catalogues: CatalogueSet, failFirstAttemptOf failStep: Set<String> = [],
                reject rejected: Set<String> = [], rejectUncorrected: Set<String> = [], agencies: [String] = HubTopics.defaultAgencies,
                now: @escaping @Sendable () -> Date) throws {
        var consumerConfig = config
        consumerConfig["session.timeout.ms"] = consumerConfig["session.timeout.ms"] ?? "6000"
        consumer = try KafkaConsumer(config: consumerConfig, groupId: prefix + "responders")
        producer = try KafkaProducer(config: config)
        try consumer.subscribe(agencies.map { prefix + "commands.\($0)" })
        let messages = consumer.messages()
        let producer = self.producer, ledger = self.ledger
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
                            } else if rejected.contains(step)
                                        || (rejectUncorrected.contains(step) && command["revision"]?.doubleValue == 0) {
                                replyType = MessageType.stepRejected
                                body["code"] = .string("INVALID_REQUEST"); body["reason"] = .string("scripted rejection")
                                body["field"] = .string("$.employees.expectedCount")
                            } else if failStep.contains(step) && attempt == 1 {
                                replyType = MessageType.stepFailed
                                body["code"] = .string("UNAVAILABLE"); body["message"] = .string("scripted outage")
                            } else {
                                replyType = MessageType.stepSucceeded
                                let outputs = catalogues.agencies[agency]?.actions.first { $0.id == action }?.outputs ?? []
                                let requestId = command["requestId"]?.stringValue ?? "?"
                                ledger.entries.withLock { _ = $0["\(saga)/\(step)", default: []].insert(requestId) }
                                body["outputs"] = .object(Dictionary(uniqueKeysWithValues: outputs.map { ($0.name, fakeOutput($0.name, saga: saga)) }))
                            }
                            let envelope = Envelope(source: "/yishi/adapters/\(agency)", type: replyType, time: now(),
                                                    subject: saga, sagaId: saga, step: step, attempt: Int(attempt))
                            try? producer.enqueue(envelope.record(topic: prefix + "events.\(agency)", key: saga,
                                                                  data: Data(JSONValue.object(body).text().utf8)))
                        }
                    }
                } catch {}
            }
        }
    }

    public func close() {
        try? consumer.close()
        stream.withLock { $0?.cancel() }
        try? producer.flush()
    }
}


final class Ledger: Sendable {
    let entries = Mutex<[String: Set<String>]>([:])
}

/// A plausible value for an output: a USCC-shaped code for `uscc` (licence keys use it), else a tag.
public func fakeOutput(_ name: String, saga: String) -> JSONValue {
    guard name == "uscc" else { return .string("\(name)-\(saga)") }
    var hash: UInt64 = 1469598103934665603
    for byte in saga.utf8 { hash = (hash ^ UInt64(byte)) &* 1099511628211 }
    return .string("91330106" + String(format: "%010llu", hash % 10_000_000_000))
}
