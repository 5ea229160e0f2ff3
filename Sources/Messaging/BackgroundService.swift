import Foundation
import Synchronization

/// A hub service's blocking loop on a thread of its own (never Swift's cooperative pool), for
/// running several services in one process (the demo, tests, benchmarks). A loop that ends in
/// an error keeps it in `failure`.
public final class BackgroundService: Sendable {
    public let name: String
    private let stopService: @Sendable () -> Void
    private let done = DispatchSemaphore(value: 0)
    private let failed = Failure()

    final class Failure: Sendable { let text = Mutex<String?>(nil) }

    public init(_ name: String, run: @escaping @Sendable () throws -> Void, stop: @escaping @Sendable () -> Void) {
        self.name = name
        stopService = stop
        let thread = Thread { [done, failed] in
            do { try run() } catch { failed.text.withLock { $0 = "\(error)" } }
            done.signal()
        }
        thread.name = "yishi." + name
        thread.start()
    }

    /// Why the loop ended with an error, if it did.
    public var failure: String? { failed.text.withLock { $0 } }

    /// Asks the loop to stop and waits for it. Calling it again returns at once (the loop's end
    /// is signalled again for the next caller), so a test's explicit stop and its `defer` agree.
    public func stop() {
        stopService()
        done.wait()
        done.signal()
    }
}
