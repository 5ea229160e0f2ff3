import Foundation
import Messaging
import Orchestrator
import Synchronization

/// An orchestrator in this process, on its own thread (its loop blocks), for tests and
/// benchmarks. Logs only errors; a run that ends in an error keeps it in `failure`.
public final class BackgroundOrchestrator: Sendable {
    public let service: OrchestratorService
    private let done = DispatchSemaphore(value: 0)
    private let failed = Failure()

    final class Failure: Sendable { let text = Mutex<String?>(nil) }

    public init(_ config: OrchestratorConfig) throws {
        service = try OrchestratorService(config: config, log: JSONLog(component: "orchestrator", minimum: .error))
        let thread = Thread { [service, done, failed] in
            do { try service.run() } catch { failed.text.withLock { $0 = "\(error)" } }
            done.signal()
        }
        thread.name = "yishi.orchestrator"
        thread.start()
    }

    /// Why `run()` ended with an error, if it did.
    public var failure: String? { failed.text.withLock { $0 } }

    /// Asks the loop to stop after the current transaction and waits for it.
    public func stop() {
        service.stop()
        done.wait()
    }
}
