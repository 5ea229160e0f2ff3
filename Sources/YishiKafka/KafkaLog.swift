import CRdKafka
import Synchronization

/// Where librdkafka's own log lines go (its `log_cb`), for every client created after `route`.
///
/// Without a route librdkafka prints its raw format on standard error
/// (`%3|1795988554.491|FAIL|yishi-ctl#producer-1| [thrd:…]: … Connection refused`). Services
/// route the lines into their JSON log; operator commands drop them (the command's own one-line
/// message says what failed, from the error callbacks and timeouts).
public enum KafkaLog {
    /// One librdkafka log line: syslog level (0 emergency … 7 debug), facility (`FAIL`,
    /// `REQTMOUT`, …), client name, message.
    public typealias Handler = @Sendable (_ level: Int32, _ facility: String, _ client: String, _ message: String) -> Void

    private static let handler = Mutex<Handler?>(nil)
    private static let routed = Atomic<Bool>(false)

    /// Sends librdkafka's log lines of every client created from now on to `handler`.
    public static func route(_ handler: @escaping Handler) {
        Self.handler.withLock { $0 = handler }
        routed.store(true, ordering: .releasing)
    }

    /// Drops librdkafka's log lines (operator commands).
    public static func quiet() { route { _, _, _, _ in } }

    static var isRouted: Bool { routed.load(ordering: .acquiring) }

    static func emit(_ level: Int32, _ facility: String, _ client: String, _ message: String) {
        handler.withLock { $0 }?(level, facility, client, message)
    }

    /// Installs the callback on `conf` when a route is set.
    static func install(on conf: OpaquePointer) {
        guard isRouted else { return }
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, buffer in
            let client = rk.map { String(cString: rd_kafka_name($0)) } ?? ""
            KafkaLog.emit(level, facility.map { String(cString: $0) } ?? "", client, buffer.map { String(cString: $0) } ?? "")
        }
    }
}
