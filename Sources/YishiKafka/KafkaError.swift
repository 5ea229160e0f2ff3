import CRdKafka

/// A librdkafka error as a typed Swift error: librdkafka's error name and
/// message, plus the transaction error classes (retriable, abortable, fatal).
public struct KafkaError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A configuration property was rejected; `property` names it.
        case configuration(property: String)
        /// The operation may be retried as it is.
        case retriable
        /// The current transaction must be aborted (`abortTransaction`), then it may be retried.
        case abortable
        /// The client instance is unusable and must be closed and recreated.
        case fatal
        /// The broker refused the client's SASL credentials or the TLS handshake failed
        /// (librdkafka's `_AUTHENTICATION`, `_SSL`): retrying will not help; fix the settings.
        /// The message names the broker, security protocol, mechanism and user.
        case authentication
        /// Any other error.
        case other
    }

    public let kind: Kind
    /// librdkafka's numeric error code (`rd_kafka_resp_err_t`).
    public let code: Int32
    /// librdkafka's symbolic error name, e.g. `_TIMED_OUT`, `UNKNOWN_TOPIC_OR_PART`.
    public let name: String
    /// librdkafka's human-readable message.
    public let message: String
    /// What we were doing when it failed, e.g. `commitTransaction`.
    public let operation: String

    public var isRetriable: Bool { kind == .retriable }
    public var requiresAbort: Bool { kind == .abortable }
    public var isFatal: Bool { kind == .fatal }
    /// A rejected configuration property (e.g. an unreadable `ssl.ca.location`).
    public var isConfiguration: Bool { if case .configuration = kind { true } else { false } }

    public init(kind: Kind, code: Int32, name: String, message: String, operation: String) {
        self.kind = kind
        self.code = code
        self.name = name
        self.message = message
        self.operation = operation
    }

    /// From a plain response error code.
    init(code: rd_kafka_resp_err_t, operation: String, message: String? = nil) {
        self.init(
            kind: code == RD_KAFKA_RESP_ERR__FATAL ? .fatal : .other,
            code: code.rawValue,
            name: String(cString: rd_kafka_err2name(code)),
            message: message ?? String(cString: rd_kafka_err2str(code)),
            operation: operation)
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer, operation: String) {
        defer { rd_kafka_error_destroy(error) }
        let kind: Kind
        if rd_kafka_error_is_fatal(error) != 0 {
            kind = .fatal
        } else if rd_kafka_error_txn_requires_abort(error) != 0 {
            kind = .abortable
        } else if rd_kafka_error_is_retriable(error) != 0 {
            kind = .retriable
        } else {
            kind = .other
        }
        self.init(
            kind: kind,
            code: rd_kafka_error_code(error).rawValue,
            name: String(cString: rd_kafka_error_name(error)),
            message: String(cString: rd_kafka_error_string(error)),
            operation: operation)
    }

    static func configuration(property: String, message: String) -> KafkaError {
        KafkaError(kind: .configuration(property: property), code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
                   name: "_INVALID_ARG", message: message, operation: "configure")
    }

    public var description: String {
        switch kind {
        case .configuration(let property):
            return "Kafka configuration property '\(property)': \(message)"
        case .authentication:
            return "\(operation): \(name): \(message)"
        default:
            let cls = kind == .other ? "" : " [\(kind)]"
            return "\(operation): \(name): \(message)\(cls)"
        }
    }
}

/// Throws when a librdkafka call returned an error object.
@inline(__always)
func check(_ error: OpaquePointer?, _ operation: String) throws(KafkaError) {
    if let error { throw KafkaError(consuming: error, operation: operation) }
}

/// Throws when a librdkafka call returned a non-zero response code.
@inline(__always)
func check(_ code: rd_kafka_resp_err_t, _ operation: String) throws(KafkaError) {
    if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: code, operation: operation) }
}
