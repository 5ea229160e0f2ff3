import Foundation
import Synchronization
import Testing
import YishiKafka

/// The real broker the suite runs against: `make test` starts Tansu on a free
/// loopback port and exports its address as YISHI_BOOTSTRAP.
public enum Broker {
    public static var bootstrap: String {
        get throws {
            guard let address = ProcessInfo.processInfo.environment["YISHI_BOOTSTRAP"], !address.isEmpty else {
                throw SetupError("YISHI_BOOTSTRAP is not set: run the suite with `make test` (it starts a Tansu broker)")
            }
            return address
        }
    }

    public static func config(_ properties: [String: String] = [:]) throws -> KafkaConfig {
        KafkaConfig(bootstrapServers: try bootstrap, properties.merging(["log_level": "3"]) { a, _ in a })
    }
}

public struct SetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// Thread-safe list for callbacks that run on poll threads.
public final class Recorder<T: Sendable>: Sendable {
    public init() {}
    private let items = Mutex<[T]>([])
    public func append(_ item: T) { items.withLock { $0.append(item) } }
    public func append(contentsOf more: [T]) { items.withLock { $0.append(contentsOf: more) } }
    public var all: [T] { items.withLock { $0 } }
    public var count: Int { items.withLock { $0.count } }
}

/// The log of the broker `scripts/with-broker.sh` started (`$YISHI_BROKER_CONTROL/broker.log`),
/// from the moment this value was made: evidence for the broker's known defects.
public struct BrokerLog: Sendable {
    let url: URL?
    let start: UInt64

    public init() {
        url = ProcessInfo.processInfo.environment["YISHI_BROKER_CONTROL"].map { URL(fileURLWithPath: $0).appendingPathComponent("broker.log") }
        start = url.flatMap { try? FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? UInt64 } ?? 0
    }

    /// The lines the broker logged since `init` (empty when there is no log to read).
    public var linesSinceStart: [String] {
        guard let url, let handle = try? FileHandle(forReadingFrom: url) else { return [] }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: start)) != nil, let data = try? handle.readToEnd() else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}

/// Polls `condition` every `interval` until it holds or `timeout` passes. Where each try is a
/// request through the broker or a CLI process, ask at an operator's pace (every half second or
/// so), not every 50 ms: the shared broker serves the other suites too.
public func eventually(every interval: Duration = .milliseconds(50), timeout: Duration, _ what: String,
                       _ condition: () throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try condition() { return }
        try await Task.sleep(for: interval)
    }
    Issue.record("timed out after \(timeout) waiting for: \(what)")
    throw SetupError("timed out waiting for \(what)")
}

/// Reads a topic from the beginning with its own assignment (no group) until `count` records
/// arrived, `until` holds, or `timeout` passed. With `count` `.max` and no `until`: until the
/// read reached the end of every partition (librdkafka's partition EOF; under read_committed the
/// last stable offset), i.e. everything written and committed when it got there.
public func readAll(_ topic: String, partitions: Int32, expecting count: Int, config: KafkaConfig,
                    isolation: String = "read_committed", timeout: Duration = .seconds(30),
                    until done: (@Sendable ([KafkaMessage]) -> Bool)? = nil) async throws -> [KafkaMessage] {
    try await readAll(topics: [topic], partitions: partitions, expecting: count, config: config, isolation: isolation,
                      timeout: timeout, until: done)
}

/// `readAll` of several topics (`partitions` each) with one consumer, so one wait covers them
/// all; records of one partition come in offset order.
public func readAll(topics: [String], partitions: Int32, expecting count: Int, config: KafkaConfig,
                    isolation: String = "read_committed", timeout: Duration = .seconds(30),
                    until done: (@Sendable ([KafkaMessage]) -> Bool)? = nil) async throws -> [KafkaMessage] {
    var config = config
    config["isolation.level"] = isolation
    let toEnd = count == .max && done == nil
    if toEnd { config["enable.partition.eof"] = "true" }
    let consumer = try KafkaConsumer(config: config, groupId: uniqueName("reader"))
    let assigned = topics.flatMap { topic in (0..<partitions).map { TopicPartitionOffset(topic, $0, TopicPartitionOffset.beginning) } }
    let ended = Mutex<Set<String>>([])
    consumer.onPartitionEnd { end in _ = ended.withLock { $0.insert("\(end.topic)/\(end.partition)") } }
    try consumer.assign(assigned)
    let received = Recorder<KafkaMessage>()
    let stream = consumer.messages()
    let collector = Task { for try await batch in stream { received.append(contentsOf: batch) } }
    defer { collector.cancel(); try? consumer.close() }
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    func finished() -> Bool {
        toEnd ? ended.withLock { $0.count } == assigned.count : received.count >= count || (done?(received.all) ?? false)
    }
    while clock.now < deadline && !finished() { try await Task.sleep(for: .milliseconds(50)) }
    // At the end: a moment for the batch that carried the last end-of-partition to reach `received`.
    // Otherwise linger a little so that extra (duplicate or aborted) records would show up.
    try await Task.sleep(for: .milliseconds(toEnd ? 200 : 500))
    return received.all
}

/// Blocking polls on a dedicated thread until `count` messages or `timeout`.
public func offloadPoll(_ consumer: KafkaConsumer, until count: Int, timeout: Duration = .seconds(20)) async throws -> [KafkaMessage] {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            var messages: [KafkaMessage] = []
            do {
                while messages.count < count && clock.now < deadline {
                    messages += try consumer.poll(maxMessages: count - messages.count, timeout: .milliseconds(100))
                }
                continuation.resume(returning: messages)
            } catch {
                continuation.resume(throwing: error)
            }
        }.start()
    }
}
