import Foundation
import Messaging
import Orchestrator

/// An orchestrator in this process, on its own thread (its loop blocks), for tests and
/// benchmarks. Logs only errors; a run that ends in an error keeps it in `failure`.
public final class BackgroundOrchestrator: Sendable {
    public let service: OrchestratorService
    private let runner: BackgroundService

    public init(_ config: OrchestratorConfig) throws {
        let service = try OrchestratorService(config: config, log: JSONLog(component: "orchestrator", minimum: .error))
        self.service = service
        runner = BackgroundService("orchestrator", run: {
            // The loop thread's name as /proc shows it (Foundation's Thread.name does not reach the
            // kernel on Linux), so a benchmark can read its CPU time.
            try? "yishi.orch".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            try service.run()
        }, stop: service.stop)
    }

    /// Why `run()` ended with an error, if it did.
    public var failure: String? { runner.failure }

    /// Asks the loop to stop after the current transaction and waits for it.
    public func stop() { runner.stop() }
}
