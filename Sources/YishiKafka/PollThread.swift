import Foundation
import Synchronization

/// A dedicated OS thread that runs `body` until stopped. librdkafka's polling
/// calls block, so they run here and never on Swift's cooperative pool. Public
/// for services that run their own blocking loops (changelog readers, tables).
public final class PollThread: Sendable {
    private let running = Atomic<Bool>(true)
    private let finished = DispatchSemaphore(value: 0)

    public init(name: String, body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            while self.running.load(ordering: .acquiring) { body() }
            self.finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Asks the loop to end and waits until the current `body` call returned.
    public func stop() {
        if running.exchange(false, ordering: .acquiringAndReleasing) { finished.wait() }
    }
}

/// Runs a blocking call on a dedicated thread and resumes the caller when it
/// returns, so async callers never block the cooperative pool.
func offloadBlocking<T: Sendable>(_ name: String, _ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try work() })
        }
        thread.name = name
        thread.start()
    }
}
