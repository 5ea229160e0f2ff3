import CRdKafka

/// An `rd_kafka_t` pointer that may cross threads: librdkafka's client
/// handles are thread-safe.
struct RdKafkaPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// Sole owner of one `rd_kafka_t`: created here, destroyed in deinit.
final class ClientHandle: Sendable {
    let rk: RdKafkaPointer

    /// Takes ownership of `conf` (librdkafka frees it on success; we free it on failure).
    init(type: rd_kafka_type_t, conf: OpaquePointer) throws(KafkaError) {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            let message = string(fromBuffer: errstr)
            // librdkafka names the offending property at the start of some messages.
            throw KafkaError(kind: .configuration(property: Self.propertyNamed(in: message)), code: -186,
                             name: "_INVALID_ARG", message: message, operation: "create client")
        }
        self.rk = RdKafkaPointer(rk)
    }

    deinit { rd_kafka_destroy(rk.pointer) }

    func fatalError(operation: String) -> KafkaError? {
        var errstr = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(rk.pointer, &errstr, errstr.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(kind: .fatal, code: code.rawValue, name: String(cString: rd_kafka_err2name(code)),
                          message: string(fromBuffer: errstr), operation: operation)
    }

    /// Finds a configuration property name in a librdkafka message such as
    /// "`acks` must be set to `all` when `enable.idempotence` is true".
    static func propertyNamed(in message: String) -> String {
        if let start = message.firstIndex(of: "`"),
           let end = message[message.index(after: start)...].firstIndex(of: "`") {
            return String(message[message.index(after: start)..<end])
        }
        return message.split(separator: " ").first.map(String.init) ?? "?"
    }
}
