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

/// Commands on `commands.*` seen by a read_committed consumer, by saga/step/attempt, with their payloads.
func commandsWritten(hub: TestHub) async throws -> [String: [Data]] {
    var seen: [String: [Data]] = [:]
    for agency in try hubAgencies() {
        for message in try await readAll(hub.topic("commands.\(agency)"), partitions: hub.partitions, expecting: .max,
                                         config: hub.kafka(), timeout: .seconds(3)) {
            let key = [Envelope.Header.sagaId, Envelope.Header.step, Envelope.Header.attempt]
                .map { message.headers.string($0) ?? "?" }.joined(separator: "/")
            seen[key, default: []].append(message.value ?? Data())
        }
    }
    return seen
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
        // A repeat is always the same decision written again (identical payload), never a second one.
        #expect(repeated.values.allSatisfy { Set($0).count == 1 }, "a command was written twice with different payloads")
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
