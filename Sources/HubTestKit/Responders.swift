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
    /// command of the same saga produced after it, read (read_committed, so after the
    /// orchestrator's transaction committed). A command produced before the answer (a parallel
    /// step's, from an earlier transaction) is not the answer's consequence and takes no sample.
    /// Samples of sagas whose answer leads to no further command are not taken.
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
                            latency.commandRead(saga: saga, createdMs: message.timestampMs)
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
    private struct State {
        /// Per saga, its last answer: when it was handed to the producer (monotonic, and wall ms).
        var pending: [String: (at: ContinuousClock.Instant, wallMs: Int64)] = [:]
        var samples: [Double] = []
        var answeredAt: [ContinuousClock.Instant] = []
        /// Per sample, ms from the answer to the command's creation (CreateTime) and from there to the read.
        var split: [(toCommand: Double, toRead: Double)] = []
        var on = false
    }
    private let state = Mutex(State())

    /// Starts taking samples (dropping any taken before).
    public func start() { state.withLock { $0 = State(); $0.on = true } }

    /// Stops and returns the samples (ms) taken since `start`.
    public func stop() -> [Double] { state.withLock { $0.on = false; return $0.samples } }

    /// Stops and returns the samples taken since `start` with the instant of the answer each one
    /// started from (to find what the orchestrator was doing during the slow ones).
    public func stopTimed() -> [(answered: ContinuousClock.Instant, ms: Double)] {
        state.withLock { $0.on = false; return Array(zip($0.answeredAt, $0.samples)) }
    }

    /// The samples split at the command's record timestamp (wall ms): answer → command created
    /// (delivery to the orchestrator, waiting for its turn, processing) and command created → read
    /// (the rest of the transaction, its commit, delivery to the department). Samples of commands
    /// without a timestamp are left out.
    public var split: [(toCommand: Double, toRead: Double)] { state.withLock { $0.split } }

    func answered(saga: String) {
        let now = ContinuousClock.now
        let wallMs = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        state.withLock { if $0.on { $0.pending[saga] = (now, wallMs) } }
    }

    /// A command of `saga` read; `createdMs`: its record's timestamp (CreateTime, wall ms), when it has one.
    func commandRead(saga: String, createdMs: Int64?) {
        let now = ContinuousClock.now
        state.withLock {
            guard $0.on, let pending = $0.pending[saga] else { return }
            // Produced before the answer: a sibling of the answered step's command, not its consequence.
            if let createdMs, createdMs < pending.wallMs { return }
            $0.pending[saga] = nil
            let since = pending.at
            let d = (now - since).components
            $0.samples.append(Double(d.seconds) * 1000 + Double(d.attoseconds) / 1e15)
            $0.answeredAt.append(since)
            if let createdMs {
                let readMs = Date().timeIntervalSince1970 * 1000
                $0.split.append((Double(createdMs - pending.wallMs), readMs - Double(createdMs)))
            }
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
