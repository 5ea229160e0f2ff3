import Foundation
import Messaging
import SagaEngine

/// What the orchestrator tells an operator in its log, from committed batches only: a warning
/// for each event a person should know about, and a periodic summary at info.
///
/// Warnings (`level` warn), one line each, at most `warningsPerInterval` per kind per interval
/// (the summary counts the rest as `warnings_suppressed`):
/// - `step timed out` (saga, step, attempt, agency answer overdue),
/// - `manual case opened` (办不成事: saga, step, code/reason),
/// - `saga failed` / `saga compensated` (saga, final status),
/// - `compensation failed`, `SLA breached`.
/// Dead letters and aborted transactions are warned where they happen (`dead-letter`,
/// `transaction not committed`). The summary, `{"msg":"summary", …}` every `interval` of wall time
/// while anything happened or sagas are in flight: inputs, commits, aborts, timers fired, dead
/// letters, sagas started and finished, step timeouts, retries, manual cases, sagas in flight.
/// Counting is a few integer additions per committed batch; nothing is logged per record at info.
final class OperationsLog {
    struct Window {
        var inputs = 0, commits = 0, aborts = 0, timersFired = 0, deadLetters = 0
        var started = 0, finished: [String: Int] = [:]
        var timeouts = 0, retries = 0, manualCases = 0, breaches = 0
        var warned: [String: Int] = [:]
        var suppressed = 0
        var isEmpty: Bool { inputs == 0 && timersFired == 0 && aborts == 0 }
    }

    let log: JSONLog
    let interval: Duration
    static let warningsPerInterval = 20
    private(set) var window = Window()
    private var since = ContinuousClock.now

    init(log: JSONLog, interval: Duration) {
        self.log = log
        self.interval = interval
    }

    /// A committed batch: `outbound` are its records (before the host forgets them).
    func committed(_ outbound: [SagaHost.Outbound], inputs: Int, timersFired: Int, deadLetters: Int) {
        window.commits += 1
        window.inputs += inputs
        window.timersFired += timersFired
        window.deadLetters += deadLetters
        for out in outbound where out.topic == "saga-events" {
            if out.type == MessageType.sagaFinished {
                let status = out.payload["status"]?.stringValue ?? "unknown"
                window.finished[status, default: 0] += 1
                if status == SagaStatus.failed.rawValue || status == SagaStatus.compensated.rawValue {
                    warn("saga \(status)", ["saga": out.sagaId, "status": status])
                }
                continue
            }
            guard let kind = out.payload["kind"]?.stringValue.flatMap(AuditEvent.Kind.init(rawValue:)) else { continue }
            var fields = ["saga": out.sagaId]
            if let step = out.step { fields["step"] = step }
            if let attempt = out.attempt { fields["attempt"] = String(attempt) }
            if let detail = out.payload["detail"]?.stringValue { fields["detail"] = detail }
            switch kind {
            case .submitted: window.started += 1
            case .stepTimedOut:
                window.timeouts += 1
                warn("step timed out", fields)
            case .retryScheduled: window.retries += 1
            case .manualCaseOpened:
                window.manualCases += 1
                warn("manual case opened (办不成事): an operator must act (yishi cases)", fields)
            case .compensationFailed: warn("compensation failed", fields)
            case .slaBreached:
                window.breaches += 1
                warn("SLA breached", fields)
            default: break
            }
        }
    }

    /// A batch whose transaction aborted (warned by the caller with its outcome).
    func aborted() { window.aborts += 1 }

    /// Called every loop turn: logs the summary once `interval` has passed (if there is
    /// anything to say) and starts a new window. `inFlight` is evaluated only then.
    func tick(inFlight: () -> Int, partitions: () -> Int) {
        let now = ContinuousClock.now
        guard now - since >= interval else { return }
        let flying = inFlight()
        if !window.isEmpty || flying > 0 {
            var fields = [
                "interval_seconds": String(format: "%.0f", (now - since).seconds),
                "inputs": String(window.inputs), "commits": String(window.commits), "aborts": String(window.aborts),
                "timers_fired": String(window.timersFired), "dead_letters": String(window.deadLetters),
                "sagas_started": String(window.started), "sagas_in_flight": String(flying), "owned_partitions": String(partitions()),
                "step_timeouts": String(window.timeouts), "retries": String(window.retries), "manual_cases": String(window.manualCases),
                "sla_breaches": String(window.breaches),
                "sagas_finished": window.finished.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
            ]
            if window.suppressed > 0 { fields["warnings_suppressed"] = String(window.suppressed) }
            log.info("summary", fields)
        }
        window = Window()
        since = now
    }

    private func warn(_ message: String, _ fields: [String: String]) {
        let n = window.warned[message, default: 0]
        window.warned[message] = n + 1
        guard n < Self.warningsPerInterval else { window.suppressed += 1; return }
        log.warn(message, fields)
    }
}
