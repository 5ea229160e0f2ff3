import Foundation
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// Stand-in for every agency's adapter and department, for tests and benchmarks:
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
    /// Step latency as the departments see it: from an answer handed to the producer to the next
    /// command of the same saga read (read_committed, so after the orchestrator's transaction
    /// committed). Samples of sagas whose answer leads to no further command are not taken.
    public let latency = StepLatency()
    private let assignedCount = Counter()
    /// Partitions of `commands.*` assigned to the responders' consumer (0 until the group join ends).
    public var assignedPartitions: Int { assignedCount.value.load(ordering: .relaxed) }

    /// `failStep`: step ids whose first attempt fails technically (retryable `UNAVAILABLE`).
    /// - Parameters:
    ///   - config: client settings (bootstrap servers, …)
    ///   - prefix: the hub's topic prefix
    ///   - failFirstAttemptOf: step ids whose first attempt fails technically (retryable `UNAVAILABLE`)
    ///   - now: the hub clock, for `ce_time`
    ///   - reject: step ids the department refuses for a business reason (not retryable)
    ///   - rejectUncorrected: step ids refused until an operator corrects the input (revision 0 is refused)
    ///   - supplementUntilProvided: step id → materials the department asks for (容缺) until the
    ///     payload's `supplements` carries them all (e.g. 清税 refused until a payment receipt comes)
    ///   - agencies: the agencies it stands in for (default: every catalogue's; leave one out to run its real adapter and department)
    public init(config: KafkaConfig, prefix: String, catalogues: CatalogueSet, failFirstAttemptOf failStep: Set<String> = [],
                reject rejected: Set<String> = [], rejectUncorrected: Set<String> = [],
                supplementUntilProvided: [String: [String]] = [:], agencies: [String]? = nil, now: @escaping @Sendable () -> Date) throws {
        var consumerConfig = config
        consumerConfig["session.timeout.ms"] = consumerConfig["session.timeout.ms"] ?? "6000"
        let assignedCount = self.assignedCount
        consumer = try KafkaConsumer(config: consumerConfig, groupId: prefix + "responders",
                                     rebalance: RebalanceListener(onAssigned: { assignedCount.value.add($0.count, ordering: .relaxed) },
                                                                  onRevoked: { partitions, _ in assignedCount.value.subtract(partitions.count, ordering: .relaxed) }))
        producer = try KafkaProducer(config: config)
        // Every agency with a catalogue (adapters/*/catalogue.json), as the orchestrator serves them, unless told.
        try consumer.subscribe((agencies ?? catalogues.ids).map { prefix + "commands.\($0)" })
        let messages = consumer.messages()
        let producer = self.producer, ledger = self.ledger, latency = self.latency
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
                            latency.commandRead(saga: saga)
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
                            } else if let materials = supplementUntilProvided[step],
                                      !materials.allSatisfy({ command["payload"]?["supplements"]?[$0] != nil }) {
                                replyType = MessageType.supplementNeeded
                                body["materials"] = .array(materials.map { .string($0) })
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
                            latency.answered(saga: saga)
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


/// Answer → next command intervals per saga (`ScriptedResponders.latency`), in milliseconds.
public final class StepLatency: Sendable {
    private struct State { var pending: [String: ContinuousClock.Instant] = [:]; var samples: [Double] = []; var on = false }
    private let state = Mutex(State())

    /// Starts taking samples (dropping any taken before).
    public func start() { state.withLock { $0 = State(); $0.on = true } }

    /// Stops and returns the samples (ms) taken since `start`.
    public func stop() -> [Double] { state.withLock { $0.on = false; return $0.samples } }

    func answered(saga: String) {
        let now = ContinuousClock.now
        state.withLock { if $0.on { $0.pending[saga] = now } }
    }

    func commandRead(saga: String) {
        let now = ContinuousClock.now
        state.withLock {
            guard $0.on, let since = $0.pending.removeValue(forKey: saga) else { return }
            let d = (now - since).components
            $0.samples.append(Double(d.seconds) * 1000 + Double(d.attoseconds) / 1e15)
        }
    }
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
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
