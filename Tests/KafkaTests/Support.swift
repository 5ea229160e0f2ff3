import Foundation
import Synchronization
import Testing
import YishiKafka

/// The real broker the suite runs against: `make test` starts Tansu on a free
/// loopback port and exports its address as YISHI_BOOTSTRAP.
enum Broker {
    static var bootstrap: String {
        get throws {
            guard let address = ProcessInfo.processInfo.environment["YISHI_BOOTSTRAP"], !address.isEmpty else {
                throw SetupError("YISHI_BOOTSTRAP is not set: run the suite with `make test` (it starts a Tansu broker)")
            }
            return address
        }
    }

    static func config(_ properties: [String: String] = [:]) throws -> KafkaConfig {
        KafkaConfig(bootstrapServers: try bootstrap, properties.merging(["log_level": "3"]) { a, _ in a })
    }
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// Thread-safe list for callbacks that run on poll threads.
final class Recorder<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func append(_ item: T) { items.withLock { $0.append(item) } }
    func append(contentsOf more: [T]) { items.withLock { $0.append(contentsOf: more) } }
    var all: [T] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration, _ what: String, _ condition: () throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("timed out after \(timeout) waiting for: \(what)")
    throw SetupError("timed out waiting for \(what)")
}

/// Reads a topic from the beginning with its own assignment (no group) until
/// `count` records arrived or `timeout` passed.
func readAll(_ topic: String, partitions: Int32, expecting count: Int, config: KafkaConfig,
             isolation: String = "read_committed", timeout: Duration = .seconds(30)) async throws -> [KafkaMessage] {
    var config = config
    config["isolation.level"] = isolation
    let consumer = try KafkaConsumer(config: config, groupId: uniqueName("reader"))
    try consumer.assign((0..<partitions).map { TopicPartitionOffset(topic, $0, TopicPartitionOffset.beginning) })
    let received = Recorder<KafkaMessage>()
    let stream = consumer.messages()
    let collector = Task { for try await batch in stream { received.append(contentsOf: batch) } }
    defer { collector.cancel(); try? consumer.close() }
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline && received.count < count { try await Task.sleep(for: .milliseconds(50)) }
    // Linger a little so that extra (duplicate or aborted) records would show up.
    try await Task.sleep(for: .milliseconds(500))
    return received.all
}
