import Foundation
import Synchronization

/// Where one turn of the orchestrator loop spent its wall time: one poll and, when there was
/// anything to do, one transaction. Durations are in seconds (wall clock of the loop thread).
///
/// Operators see slow turns as debug log lines (`transaction slow`, see
/// `OrchestratorService.slowBatch`); benchmarks and tests read the recent ones with
/// `OrchestratorService.recentBatches` after turning `traceBatches` on.
public struct BatchTiming: Sendable, Equatable {
    /// When the turn began (before its first poll).
    public var start: ContinuousClock.Instant
    /// Waiting in the first poll (nothing to read yet), seconds.
    public var pollWait = 0.0
    /// Gathering more inputs after the first ones arrived (`commitInterval`), seconds.
    public var gather = 0.0
    /// Decoding the inputs and running the engine on them, seconds.
    public var process = 0.0
    /// Firing due timers and retiring finished sagas, seconds.
    public var timers = 0.0
    /// Encoding and checking the changed sagas' `saga-state` values, seconds.
    public var encode = 0.0
    /// Building the producer records of the transaction, seconds.
    public var build = 0.0
    /// Inside `TransactionalProducer.commitBatch` (begin, produce, send offsets, commit), seconds.
    public var commit = 0.0
    /// Of `commit`: enqueueing the records, sending the consumed offsets, committing, seconds.
    public var produce = 0.0, sendOffsets = 0.0, commitCall = 0.0
    /// Installing the committed batch in the hot state, metrics and stats, seconds.
    public var install = 0.0
    /// Handing the live set to the snapshot writer (watermarks, copy), seconds.
    public var snapshot = 0.0
    /// Age of the oldest input when the batch was taken: wall time since its record's timestamp
    /// (its producer's CreateTime), seconds; zero without inputs. Long ages with short polls
    /// mean inputs reach this instance late (producer linger, broker, fetch wait).
    public var oldestInput = 0.0
    /// Inputs consumed, timers fired, sagas retired, records produced.
    public var inputs = 0, fired = 0, retired = 0, records = 0
    /// When the transaction's commit returned (nil: nothing to commit, or not committed).
    public var committedAt: ContinuousClock.Instant?
    /// When the turn ended.
    public var end: ContinuousClock.Instant

    public init(start: ContinuousClock.Instant) {
        self.start = start
        end = start
    }

    /// The whole turn, seconds.
    public var total: Double { (end - start).seconds }

    /// The fields of a `transaction slow` log line (milliseconds and counts).
    var logFields: [String: String] {
        func ms(_ s: Double) -> String { String(format: "%.1f", s * 1000) }
        return ["total_ms": ms(total), "poll_wait_ms": ms(pollWait), "gather_ms": ms(gather), "process_ms": ms(process),
                "timers_ms": ms(timers), "encode_ms": ms(encode), "build_ms": ms(build), "commit_ms": ms(commit),
                "produce_ms": ms(produce), "send_offsets_ms": ms(sendOffsets), "commit_call_ms": ms(commitCall),
                "install_ms": ms(install), "snapshot_ms": ms(snapshot), "oldest_input_ms": ms(oldestInput), "inputs": String(inputs), "timers_fired": String(fired),
                "retired": String(retired), "records": String(records)]
    }
}

/// The most recent `BatchTiming`s, oldest first, up to `capacity` (any thread may read).
final class BatchTrace: Sendable {
    let capacity: Int
    private let ring = Mutex<[BatchTiming]>([])

    init(capacity: Int = 50_000) { self.capacity = capacity }

    func append(_ timing: BatchTiming) {
        ring.withLock {
            if $0.count >= capacity { $0.removeFirst($0.count - capacity + 1) }
            $0.append(timing)
        }
    }

    var all: [BatchTiming] { ring.withLock { $0 } }
    func clear() { ring.withLock { $0.removeAll() } }
}
