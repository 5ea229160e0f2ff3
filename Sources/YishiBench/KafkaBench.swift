import Foundation
import YishiKafka

/// Produce and consume throughput of the Swift Kafka layer next to
/// rdkafka_performance, alternating runs on fresh topics of the same broker.
struct KafkaBench {
    let bootstrap: String
    let tool: String
    let messages: Int
    let partitions: Int32 = 4
    let valueSize = 512
    /// The settings both sides use.
    var producerSettings: [String: String] { ["linger.ms": "5", "enable.idempotence": "true"] }


    /// Each round measures both sides on fresh topics, alternating which goes
    /// first so that drift (the in-memory broker growing) hits both alike.
    /// Reported: the median of each figure and the median of the per-round ratios.
    func run(rounds: Int) throws -> [(name: String, value: Double, unit: String)] {
        let admin = try KafkaAdmin(config: benchConfig(bootstrap))
        var produce: [(swift: Double, tool: Double)] = []
        var consume: [(swift: Double, tool: Double)] = []
        for round in 1...rounds {
            let toolTopic = "bench-tool-\(round)-\(UUID().uuidString.prefix(6))"
            let swiftTopic = "bench-swift-\(round)-\(UUID().uuidString.prefix(6))"
            try admin.ensureTopics([TopicSpec(toolTopic, partitions: partitions), TopicSpec(swiftTopic, partitions: partitions)])
            let swiftFirst = round % 2 == 0
            var p = (swift: 0.0, tool: 0.0), c = (swift: 0.0, tool: 0.0)
            if swiftFirst { p.swift = try swiftProduce(topic: swiftTopic) }
            p.tool = try toolProduce(topic: toolTopic)
            if !swiftFirst { p.swift = try swiftProduce(topic: swiftTopic) }
            // Both consumers read the topic rdkafka_performance wrote.
            if swiftFirst { c.swift = try swiftConsume(topic: toolTopic) }
            c.tool = try toolConsume(topic: toolTopic)
            if !swiftFirst { c.swift = try swiftConsume(topic: toolTopic) }
            progress(String(format: "round %d/%d: produce swift %.0f tool %.0f msg/s; consume swift %.0f tool %.0f msg/s",
                            round, rounds, p.swift, p.tool, c.swift, c.tool))
            produce.append(p)
            consume.append(c)
        }
        return [
            ("kafka.produce.swift", median(produce.map(\.swift)), "msg/s"),
            ("kafka.produce.rdkafka_performance", median(produce.map(\.tool)), "msg/s"),
            ("kafka.produce.ratio", median(produce.map { $0.swift / $0.tool }), "x"),
            ("kafka.consume.swift", median(consume.map(\.swift)), "msg/s"),
            ("kafka.consume.rdkafka_performance", median(consume.map(\.tool)), "msg/s"),
            ("kafka.consume.ratio", median(consume.map { $0.swift / $0.tool }), "x"),
        ]
    }

    func swiftProduce(topic: String) throws -> Double {
        let producer = try KafkaProducer(config: benchConfig(bootstrap, producerSettings))
        let value = Data(repeating: UInt8(ascii: "y"), count: valueSize)
        let record = ProducerRecord(topic: topic, value: value)
        let start = ContinuousClock.now
        for _ in 0..<messages { try producer.enqueue(record) }
        try producer.flush(timeout: .seconds(120))
        let elapsed = ContinuousClock.now - start
        guard producer.deliveryCounts.delivered == messages else {
            throw BenchError("swift producer delivered \(producer.deliveryCounts.delivered) of \(messages)")
        }
        return Double(messages) / elapsed.seconds
    }

    /// Timed like rdkafka_performance's consumer: from the first message received to the last.
    func swiftConsume(topic: String) throws -> Double {
        let consumer = try KafkaConsumer(config: benchConfig(bootstrap),
                                         groupId: "bench-swift-\(UUID().uuidString.prefix(6))")
        try consumer.subscribe([topic])
        var received = 0
        var bytes = 0
        var first: ContinuousClock.Instant?
        let deadline = ContinuousClock.now + .seconds(120)
        while received < messages && ContinuousClock.now < deadline {
            let batch = try consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
            if first == nil && !batch.isEmpty { first = .now }
            for message in batch {
                received += 1
                bytes += message.value?.count ?? 0
            }
        }
        let end = ContinuousClock.now
        try consumer.close()
        guard received == messages, let first, bytes == messages * valueSize else {
            throw BenchError("swift consumer received \(received) of \(messages)")
        }
        return Double(received) / (end - first).seconds
    }

    /// rdkafka_performance -P with the same settings; parses its "N msgs/s" summary.
    func toolProduce(topic: String) throws -> Double {
        var args = ["-P", "-t", topic, "-b", bootstrap, "-s", String(valueSize), "-c", String(messages), "-q"]
        for (key, value) in producerSettings.sorted(by: { $0.key < $1.key }) { args += ["-X", "\(key)=\(value)"] }
        return try runTool(args, summaryContaining: "messages produced")
    }

    func toolConsume(topic: String) throws -> Double {
        try runTool(["-C", "-G", "bench-tool-\(UUID().uuidString.prefix(6))", "-t", topic, "-b", bootstrap,
                     "-o", "beginning", "-c", String(messages), "-q"], summaryContaining: "consumed in")
    }

    private func runTool(_ args: [String], summaryContaining marker: String) throws -> Double {
        // The same security settings; rdkafka_performance takes properties only as -X on its command
        // line, where a secret must never go.
        if let secret = benchSecurity.properties.keys.first(where: KafkaSecurity.isSecret) {
            throw BenchError("the rdkafka_performance comparison would need \(secret) on its command line; measure the kafka figures with TLS client certificates only, or use --only engine|orchestrator|cli")
        }
        let securityArgs = benchSecurity.properties.sorted { $0.key < $1.key }.flatMap { ["-X", "\($0.key)=\($0.value)"] }
        let (status, output) = try runProgram(tool, args + securityArgs)
        // e.g. "% 500000 messages produced (…) in 1466ms: 341064 msgs/s and 174.63 MB/s, …"
        guard status == 0,
              let line = output.split(separator: "\n").last(where: { $0.contains(marker) }),
              let range = line.range(of: #"(\d+) msgs/s"#, options: .regularExpression),
              let rate = Double(line[range].split(separator: " ")[0]) else {
            throw BenchError("rdkafka_performance \(args.joined(separator: " ")) gave no summary:\n\(output.suffix(600))")
        }
        return rate
    }
}

/// Runs a program to its end; its exit status and standard output (standard error dropped).
func runProgram(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { throw BenchError("cannot run \(path): \(error)") }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
