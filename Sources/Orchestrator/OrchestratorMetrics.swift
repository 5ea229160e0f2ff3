import Foundation
import HubHTTP
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// The orchestrator's metrics (Prometheus names; `docs/operations.md` lists them), on top of
/// the shared `KafkaServiceMetrics`:
///
/// - `yishi_sagas_started_total{bundle}`, `yishi_sagas_finished_total{bundle,status}`
/// - `yishi_sagas_in_flight`, `yishi_manual_cases_open`, `yishi_owned_partitions` (gauges, this instance)
/// - `yishi_step_duration_seconds{agency,action}`: hub-clock seconds from a step's dispatch to
///   the agency's answer (succeeded, rejected or failed), both seen by this instance
/// - `yishi_sla_at_risk_total{bundle}`, `yishi_sla_breached_total{bundle}`
/// - `yishi_restore_duration_seconds` (histogram), `yishi_restored_sagas_total`
///
/// Counted only from committed transactions, so an aborted batch counts nothing.
public final class OrchestratorMetrics: @unchecked Sendable {
    // @unchecked: `dispatched` is touched by the orchestrator loop thread only.
    public let kafka: KafkaServiceMetrics
    public var registry: MetricsRegistry { kafka.registry }
    public var health: ServiceHealth { kafka.health }
    let started, finished, inFlight, manualOpen, owned, stepSeconds, atRisk, breached, restoreSeconds, restored: MetricFamily
    /// Dispatches waiting for their answer: `saga/step` → (hub-clock dispatch instant, agency, action).
    private var dispatched: [String: (at: Instant?, agency: String?, action: String?)] = [:]
    private var lastGauges = ContinuousClock.now - .seconds(10)

    public init(registry: MetricsRegistry = MetricsRegistry(), health: ServiceHealth = ServiceHealth(), prefix: String) {
        kafka = KafkaServiceMetrics(service: "orchestrator", registry: registry, health: health, dlqTopic: prefix + "dlq")
        started = registry.counter("yishi_sagas_started_total", "Sagas started (applications accepted), by bundle.", labels: ["bundle"])
        finished = registry.counter("yishi_sagas_finished_total", "Sagas finished, by bundle and final status.", labels: ["bundle", "status"])
        inFlight = registry.gauge("yishi_sagas_in_flight", "Sagas owned by this instance that have not finished.")
        manualOpen = registry.gauge("yishi_manual_cases_open", "Open manual cases (办不成事) on sagas owned by this instance.")
        owned = registry.gauge("yishi_owned_partitions", "Saga partitions this instance owns (restored).")
        stepSeconds = registry.histogram("yishi_step_duration_seconds",
                                         "Hub-clock seconds from a step's dispatch to the agency's answer, by agency and action.",
                                         labels: ["agency", "action"],
                                         buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400])
        atRisk = registry.counter("yishi_sla_at_risk_total", "Sagas that reached their SLA at-risk point unfinished, by bundle.", labels: ["bundle"])
        breached = registry.counter("yishi_sla_breached_total", "Sagas that passed their SLA deadline unfinished, by bundle.", labels: ["bundle"])
        restoreSeconds = registry.histogram("yishi_restore_duration_seconds", "Wall seconds to restore the sagas of newly assigned partitions.",
                                            buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
        restored = registry.counter("yishi_restored_sagas_total", "Sagas restored from the saga-state changelog.")
    }

    /// A committed transaction's saga outputs: counts starts, finishes, SLA events and step latencies.
    /// `bundle` gives a saga's bundle id.
    func committed(_ outbound: [SagaHost.Outbound], bundle: (String) -> String?) {
        for out in outbound {
            if out.topic.hasPrefix("commands."), out.type == MessageType.stepRequested, let step = out.step {
                let key = out.sagaId + "/" + step
                dispatched[key, default: (nil, nil, nil)].agency = String(out.topic.dropFirst("commands.".count))
                dispatched[key]?.action = out.payload["action"]?.stringValue
                continue
            }
            guard out.topic == "saga-events" else { continue }
            let name = bundle(out.sagaId) ?? "unknown"
            if out.type == MessageType.sagaFinished {
                finished.inc(name, out.payload["status"]?.stringValue ?? "unknown")
                continue
            }
            guard let kind = out.payload["kind"]?.stringValue.flatMap(AuditEvent.Kind.init(rawValue:)) else { continue }
            let at = out.payload["at"]?.doubleValue.map { Instant(ms: Int64($0)) }
            let key = out.sagaId + "/" + (out.step ?? "")
            switch kind {
            case .submitted: started.inc(name)
            case .slaAtRisk: atRisk.inc(name)
            case .slaBreached: breached.inc(name)
            case .stepDispatched: dispatched[key, default: (nil, nil, nil)].at = at
            case .stepSucceeded, .stepRejected, .stepFailed:
                if let sent = dispatched.removeValue(forKey: key), let from = sent.at, let at, let agency = sent.agency {
                    stepSeconds.observe(Double(at.ms - from.ms) / 1000, agency, sent.action ?? "unknown")
                }
            case .stepTimedOut: dispatched[key] = nil
            default: break
            }
        }
        if dispatched.count > 200_000 { dispatched.removeAll() }  // answers never seen (sagas moved away): bounded memory
    }

    /// Refreshes the saga gauges from the owned sagas (at most once a second; O(sagas)).
    /// Readiness too: ready when every assigned partition's sagas are restored (`owned`, saga partition numbers).
    func refresh(sagas: @autoclosure () -> Dictionary<String, SagaState>.Values, owned ownedNumbers: Set<Int32>,
                 assigned: @autoclosure () -> Set<Int32>) {
        guard ContinuousClock.now - lastGauges >= .seconds(1) else { return }
        lastGauges = .now
        let assignedNumbers = assigned()
        if assignedNumbers.isEmpty {
            health.ready(false, "no partitions assigned (joining the group, or more members than partitions)")
        } else if !assignedNumbers.isSubset(of: ownedNumbers) {
            health.ready(false, "restoring saga partitions \(assignedNumbers.subtracting(ownedNumbers).sorted())")
        } else {
            health.ready(true)
        }
        let partitions = ownedNumbers.count
        var flight = 0, cases = 0
        for saga in sagas() {
            if !saga.status.isFinal { flight += 1 }
            cases += saga.manualCases.count
        }
        inFlight.set(Double(flight))
        manualOpen.set(Double(cases))
        owned.set(Double(partitions))
    }

    /// Partitions restored: duration (wall seconds) and saga count.
    func restoredPartitions(seconds: Double, sagas: Int) {
        restoreSeconds.observe(seconds)
        restored.inc(by: Double(sagas))
        lastGauges = ContinuousClock.now - .seconds(10)
    }
}
