import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import YishiKafka

/// `sagas show` with many sagas in the system: writes `sagas` realistic saga states (an
/// enterprise-opening saga half way, with its form values) to `saga-state` and a few audit events
/// each to `saga-events`, then times what `yishi sagas show ID --source changelog` does — read
/// the saga's one partition of each topic, build and render the timeline — against reading the
/// whole `saga-state` topic (what a reader without the partitioner would have to do).
enum CLIBench {
    static func run(bootstrap: String, repoRoot: URL, sagas: Int) throws -> [(name: String, value: Double, unit: String)] {
        let prefix = "bench-cli-\(UUID().uuidString.prefix(6).lowercased())."
        let partitions: Int32 = 6
        let hub = Hub(bootstrap: bootstrap, prefix: prefix, operatorName: "bench", timeout: .seconds(120), kafka: ["log_level": "3"],
                      security: benchSecurity)
        try KafkaAdmin(config: hub.kafka()).ensureTopics(HubTopics.all(prefix: prefix, partitions: partitions,
                                                                     agencies: try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")).ids))
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        guard let bundle = library.newest("enterprise-opening"), let calendar = library.calendar(for: bundle) else {
            throw BenchError("enterprise-opening is not in seeds/bundles")
        }
        let (template, audit) = try sampleSaga(repoRoot: repoRoot, bundle: bundle, calendar: calendar)
        let marker = "APP-BENCH-TEMPLATE"
        let stateJSON = String(decoding: try JSONEncoder().encode(template), as: UTF8.self)
        let auditJSON = try audit.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }

        // Write them: one idempotent producer, keyed by saga id (murmur2, as the orchestrator does).
        let start = ContinuousClock.now
        let producer = try KafkaProducer(config: hub.kafka(["linger.ms": "20", "batch.size": "1000000", "compression.type": "none"]))
        let source = "/yishi/orchestrator/bench"
        let at = Date(timeIntervalSince1970: Double(template.submittedAt.ms) / 1000)
        for n in 0..<sagas {
            let id = String(format: "APP-BENCH-%07d", n)
            let state = Envelope(id: "s\(n)", source: source, type: MessageType.sagaState, time: at, subject: id, sagaId: id)
            try producer.enqueue(state.record(topic: hub.topic("saga-state"), key: id, data: Data(stateJSON.replacingOccurrences(of: marker, with: id).utf8)))
            for (k, event) in audit.enumerated() {
                let envelope = Envelope(id: "a\(n)-\(k)", source: source, type: MessageType.sagaAudit(event.kind.rawValue), time: at,
                                        subject: id, sagaId: id, step: event.step, attempt: event.attempt)
                try producer.enqueue(envelope.record(topic: hub.topic("saga-events"), key: id,
                                                     data: Data(auditJSON[k].replacingOccurrences(of: marker, with: id).utf8)))
            }
            if n % 20_000 == 0 && n > 0 { progress("cli: \(n)/\(sagas) saga states written") }
        }
        try producer.flush(timeout: .seconds(300))
        guard producer.deliveryCounts.failed == 0 else { throw BenchError("\(producer.deliveryCounts.failed) records not delivered") }
        progress("cli: \(sagas) states and \(sagas * audit.count) audit events written in \(ContinuousClock.now - start) (prefix \(prefix))")

        // `sagas show` through the changelog: median of several sagas spread over the partitions.
        let now = template.submittedAt + 4 * 3_600_000
        var show: [Double] = []
        var lastText = ""
        for n in stride(from: 7, to: sagas, by: max(1, sagas / 7)) {
            let id = String(format: "APP-BENCH-%07d", n)
            let t0 = ContinuousClock.now
            // What `yishi sagas show ID --source changelog` does: both partitions read at once.
            let (found, events) = try Changelog(hub: hub).audit(of: id) { try Changelog(hub: hub).state(of: id) }
            guard let state = found else { throw BenchError("\(id) not found in the changelog") }
            let timeline = SagaTimeline(state: state, bundle: bundle, calendar: calendar, audit: events, now: now, source: "changelog")
            lastText = Render.timeline(timeline, style: .plain)
            show.append((ContinuousClock.now - t0).seconds * 1000)
            guard events.count == audit.count, state.sagaId == id else { throw BenchError("\(id): read \(events.count) audit events") }
        }
        guard lastText.contains("social-security") else { throw BenchError("the timeline lacks its steps") }

        // Baseline: every saga-state record (all partitions), no decoding.
        let t0 = ContinuousClock.now
        let all = try TopicReader(hub: hub).read(topic: hub.topic("saga-state"), partitions: Array(0..<partitions))
        let whole = (ContinuousClock.now - t0).seconds * 1000
        guard all.count >= sagas else { throw BenchError("read \(all.count) of \(sagas) saga-state records") }
        let median = show.sorted()[show.count / 2]
        var figures: [(name: String, value: Double, unit: String)] = [
            ("cli.sagas", Double(sagas), "sagas"),
            ("cli.state_bytes", Double(stateJSON.utf8.count), "bytes"),
            ("cli.sagas_show_ms", median, "ms"),
            ("cli.read_all_states_ms", whole, "ms"),
            ("cli.show_vs_all_ratio", median / whole, "x"),
        ]
        // What the operator waits for: the `yishi` binary from process start to the printed timeline.
        if let binary = ProcessInfo.processInfo.environment["YISHI_BIN"] {
            var runs: [Double] = []
            for n in stride(from: 11, to: sagas, by: max(1, sagas / 9)) {
                let id = String(format: "APP-BENCH-%07d", n)
                let t0 = ContinuousClock.now
                let (status, out) = try runProgram(binary, ["sagas", "show", id, "--source", "changelog", "--bootstrap", bootstrap,
                                                            "--prefix", prefix, "--as", "bench", "--no-color", "--timeout", "60"])
                runs.append((ContinuousClock.now - t0).seconds * 1000)
                guard status == 0, out.contains(id), out.contains("social-security") else {
                    throw BenchError("yishi sagas show \(id) exited \(status) and printed: \(out.prefix(300))")
                }
            }
            figures.append(("cli.sagas_show_process_ms", runs.sorted()[runs.count / 2], "ms"))
            figures.append(("cli.sagas_show_process_max_ms", runs.max() ?? 0, "ms"))
        }
        return figures
    }

    /// An enterprise-opening saga half way: registered, seals and tax done, social security
    /// failed (a manual case), bank out; with the seed form's values. Its audit trail, trimmed to a few events.
    static func sampleSaga(repoRoot: URL, bundle: CompiledBundle, calendar: BusinessCalendar) throws -> (SagaState, [AuditEvent]) {
        guard let form = try SeedApplications.valid(repoRoot: repoRoot).first(where: { $0["bundle"]?.stringValue == "enterprise-opening" }) else {
            throw BenchError("no enterprise-opening seed application")
        }
        let t0 = Instant(rfc3339: "2026-03-02T09:15:00+08:00")!
        var state = SagaState(sagaId: "APP-BENCH-TEMPLATE", bundle: bundle)
        var audit: [AuditEvent] = []
        func apply(_ minutes: Int64, _ event: SagaEvent) {
            for case .audit(let e) in SagaEngine.apply(to: &state, SagaInput(at: t0 + minutes * 60_000, event), bundle: bundle, calendar: calendar) {
                audit.append(e)
            }
        }
        func outputs(_ step: String) -> [String: JSONValue] {
            let s = bundle.steps[bundle.stepIndex(of: step)!]
            let names = (try? CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")))?
                .agencies[s.agency]?.actions.first { $0.id == s.action }?.outputs.map(\.name) ?? []
            return Dictionary(uniqueKeysWithValues: names.map { ($0, JSONValue.string("\($0)-\(step)-0001")) })
        }
        apply(0, .submit(form: form, licences: [:]))
        apply(3, .stepSucceeded(step: "name-reservation", attempt: 1, outputs: outputs("name-reservation")))
        apply(40, .stepSucceeded(step: "registration", attempt: 1, outputs: outputs("registration")))
        apply(50, .stepSucceeded(step: "seals", attempt: 1, outputs: outputs("seals")))
        apply(52, .stepSucceeded(step: "tax-registration", attempt: 1, outputs: outputs("tax-registration")))
        apply(55, .stepRejected(step: "social-security", attempt: 1, code: "INVALID_REQUEST", reason: "employee count does not match", field: nil))
        return (state, Array(audit.prefix(5)))
    }
}
