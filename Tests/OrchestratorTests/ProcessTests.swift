import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// An orchestrator as a separate OS process (`yishi orchestrator run`), so it can be SIGKILLed;
/// each one logs to a file of its own.
/// `clock`: the hub's clock unless given (a restart after virtual downtime continues another one).
func orchestratorProcess(hub: TestHub, instance: String, logDirectory: URL, clock: HubClock? = nil) throws -> YishiProcess {
    let clock = clock ?? hub.clock
    return try YishiProcess("\(instance)-\(UUID().uuidString.prefix(4))",
                     ["orchestrator", "run", "--bootstrap", hub.bootstrap, "--prefix", hub.prefix,
                      "--partitions", String(hub.partitions), "--instance", instance, "--group", hub.prefix + "orchestrator",
                      "--session-timeout-ms", "6000",
                      "--clock-start", clock.start.description, "--clock-speed", String(clock.speed),
                      "--clock-wall-start", String(Int64(clock.wallStart.timeIntervalSince1970 * 1000))],
                     command: YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment), logDirectory: logDirectory)
}

/// Commands on `commands.*` by saga/step/attempt, with their payloads in the order written: those a
/// read_committed consumer sees, or with `isolation` "read_uncommitted" also the copies written in
/// transactions that were aborted.
func commandsWritten(hub: TestHub, isolation: String = "read_committed") async throws -> [String: [Data]] {
    let messages = try await readAll(topics: try hubAgencies().map { hub.topic("commands.\($0)") }, partitions: hub.partitions,
                                     expecting: .max, config: hub.kafka(), isolation: isolation, timeout: .seconds(5))
    var seen: [String: [Data]] = [:]
    for message in messages {
        let key = [Envelope.Header.sagaId, Envelope.Header.step, Envelope.Header.attempt]
            .map { message.headers.string($0) ?? "?" }.joined(separator: "/")
        seen[key, default: []].append(message.value ?? Data())
    }
    return seen
}

/// Why the copies of one command are not the same decision written again, or nil when they are: a field
/// other than `deadline` differs, or a later copy's `deadline` is earlier than the first one's.
func decisionDifference(_ payloads: [Data]) -> String? {
    let copies = payloads.map { (try? JSONValue.parse($0)) ?? .null }
    guard case .object(let first) = copies[0] else { return "not a JSON object" }
    for copy in copies.dropFirst() {
        guard case .object(let other) = copy else { return "not a JSON object" }
        let fields = Set(first.keys).union(other.keys).filter { $0 != "deadline" && first[$0] != other[$0] }
        if !fields.isEmpty { return "differ in " + fields.sorted().joined(separator: ", ") }
        if let a = first["deadline"]?.doubleValue, let b = other["deadline"]?.doubleValue, b < a {
            return "a later copy is due earlier (\(Int64(b)) < \(Int64(a)))"
        }
    }
    return nil
}

/// One saga's audit events, as `kind step attempt detail` lines (for failure reports).
func auditTrail(hub: TestHub, sagaId: String) async throws -> [String] {
    try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(3))
        .filter { $0.keyString == sagaId }
        .map { message in
            let body = (try? JSONValue.parse(message.value ?? Data())) ?? .null
            return ["kind", "step", "attempt", "detail", "at"].map { body[$0].map { $0.text() } ?? "-" }.joined(separator: " ")
        }
}

@Suite("Orchestrator processes on Tansu: crashes and scale-out", .serialized)
struct ProcessTests {
    @Test("1,000 sagas survive 5 SIGKILLs of the orchestrator at random moments", .timeLimit(.minutes(8)))
    func crashes() async throws {
        // 20 virtual seconds per real second: the shortest step timeout (15 min) is 45 s real, longer
        // than a restart plus the broker holding back a killed transaction (read_committed waits
        // for its abort), so timeouts here would be the test's artefact, not the hub's.
        let hub = try TestHub(partitions: 4, speed: 20)
        try hub.ensureTopics()
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent(hub.prefix + "logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let responders = try hub.responders()
        defer { responders.close() }
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: 1000, tag: "CRASH")
        var orchestrator = try orchestratorProcess(hub: hub, instance: "o1", logDirectory: logs)
        defer { orchestrator.terminate() }
        try hub.submit(forms, producer: KafkaProducer(config: hub.kafka()))

        var rng = SystemRandomNumberGenerator()
        var kills = 0
        let start = ContinuousClock.now
        while kills < 5 {
            // Random moments while sagas are in flight (including during restore after a restart).
            try await Task.sleep(for: .milliseconds(Int.random(in: 1500...6000, using: &rng)))
            orchestrator.kill()
            kills += 1
            orchestrator = try orchestratorProcess(hub: hub, instance: "o1", logDirectory: logs)
        }
        let finished = try await finishedSagas(hub: hub, expecting: forms.count, timeout: .seconds(300))
        print("crash test: \(kills) SIGKILLs, \(finished.count) sagas finished after \(ContinuousClock.now - start)")
        #expect(finished.count == forms.count, "finished \(finished.count) of \(forms.count)")
        #expect(finished.values.allSatisfy { $0 == "completed" }, "statuses: \(Set(finished.values))")
        if let failed = finished.first(where: { $0.value != "completed" })?.key {
            print("audit trail of \(failed):\n" + (try await auditTrail(hub: hub, sagaId: failed)).joined(separator: "\n"))
        }

        // No second department effect: one request id per (saga, step), whatever was redelivered.
        let effects = responders.effects
        #expect(effects.count == (try stepCount(of: forms)), "effects for \(effects.count) saga steps")
        #expect(effects.values.allSatisfy { $0.count == 1 }, "steps acted on under two request ids")

        let commands = try await commandsWritten(hub: hub)
        #expect(Set(commands.keys.map { $0.split(separator: "/").prefix(2).joined(separator: "/") }).count == (try stepCount(of: forms)))
        let repeated = commands.filter { $0.value.count > 1 }
        // Every copy written, committed or aborted by a SIGKILL, is the same decision: same request id,
        // action, payload and revision, never a second one. Only `deadline` may differ: it is the
        // step's due time, counted from the hub's now when the input is processed (issue 10), and the
        // redo of a batch whose transaction a SIGKILL aborted runs later than the aborted copy did,
        // so its due is not earlier. Read uncommitted, so that this holds on every run, not only
        // when the broker shows an aborted copy to read_committed readers.
        let written = try await commandsWritten(hub: hub, isolation: "read_uncommitted")
        let rewritten = written.filter { $0.value.count > 1 }
        let decisionDiffs = rewritten.compactMap { key, payloads in decisionDifference(payloads).map { "\(key): \($0)" } }
        print("crash test: \(rewritten.count) commands written again after an abort, \(rewritten.values.filter { Set($0).count > 1 }.count) "
              + "of them with a later deadline; \(repeated.count) seen twice by read_committed")
        #expect(Set(written.keys) == Set(commands.keys), "commands written but never committed: \(Set(written.keys).subtracting(commands.keys).sorted().prefix(3))")
        #expect(decisionDiffs.isEmpty, "a command was written twice as different decisions: \(decisionDiffs.sorted().prefix(3))")
        withKnownIssue("Tansu 0.6.0 shows read_committed consumers the records of transactions aborted by a crash", isIntermittent: true) {
            #expect(repeated.isEmpty, "\(repeated.count) commands seen twice, e.g. \(repeated.keys.sorted().prefix(3))")
        }
    }

    @Test("a second instance joins and later leaves mid-run: nothing lost, nothing duplicated", .timeLimit(.minutes(6)))
    func scaleOutAndIn() async throws {
        // 30 virtual seconds per real second: a rebalance pause stays far below every step timeout.
        let hub = try TestHub(partitions: 4, speed: 30)
        try hub.ensureTopics()
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent(hub.prefix + "logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let responders = try hub.responders()
        defer { responders.close() }
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: 600, tag: "SCALE")
        let first = try orchestratorProcess(hub: hub, instance: "o1", logDirectory: logs)
        defer { first.terminate() }
        let producer = try KafkaProducer(config: hub.kafka())
        try hub.submit(Array(forms[0..<200]), producer: producer)
        try await Task.sleep(for: .seconds(3))
        let second = try orchestratorProcess(hub: hub, instance: "o2", logDirectory: logs)
        try hub.submit(Array(forms[200..<400]), producer: producer)
        try await Task.sleep(for: .seconds(8))
        second.terminate()  // leaves the group cleanly: o1 takes its partitions back
        try hub.submit(Array(forms[400...]), producer: producer)

        let finished = try await finishedSagas(hub: hub, expecting: forms.count, timeout: .seconds(240))
        #expect(finished.count == forms.count, "finished \(finished.count) of \(forms.count)")
        #expect(finished.values.allSatisfy { $0 == "completed" })
        let effects = responders.effects
        #expect(effects.count == (try stepCount(of: forms)) && effects.values.allSatisfy { $0.count == 1 })
        // No process was killed, so no transaction was aborted: strictly once.
        let commands = try await commandsWritten(hub: hub)
        #expect(Set(commands.keys.map { $0.split(separator: "/").prefix(2).joined(separator: "/") }).count == (try stepCount(of: forms)))
        #expect(commands.values.allSatisfy { $0.count == 1 }, "duplicated: \(commands.filter { $0.value.count > 1 }.keys.sorted().prefix(3))")
        // Both instances did work.
        let logText = try FileManager.default.contentsOfDirectory(at: logs, includingPropertiesForKeys: nil)
            .filter { $0.lastPathComponent.hasPrefix("o2-") }
            .map { try String(contentsOf: $0, encoding: .utf8) }.joined()
        #expect(logText.contains("\"msg\":\"assigned\""), "o2 never got partitions")
    }
}
