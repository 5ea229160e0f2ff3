import CRdKafka
import Foundation

/// librdkafka configuration properties (see librdkafka's CONFIGURATION.md).
/// Values are validated when a client is created; a rejected property is
/// reported as `KafkaError.Kind.configuration(property:)`.
public struct KafkaConfig: Sendable, Equatable, CustomStringConvertible {
    public private(set) var properties: [String: String]

    public init(bootstrapServers: String, _ properties: [String: String] = [:]) {
        self.properties = properties
        self.properties["bootstrap.servers"] = bootstrapServers
    }

    /// For clients of the librdkafka mock cluster (`MockCluster.bootstrapServers`).
    public init(properties: [String: String]) {
        self.properties = properties
    }

    /// The properties as `key=value`, sorted, secrets shown as `***` (for logs and config dumps).
    public var description: String {
        KafkaSecurity.redacted(properties).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    public subscript(key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    /// Returns a copy with `defaults` filled in where the caller set nothing.
    func withDefaults(_ defaults: [String: String]) -> KafkaConfig {
        var copy = self
        for (key, value) in defaults where copy.properties[key] == nil { copy.properties[key] = value }
        return copy
    }

    /// Every client's defaults, unless set. `enable.metrics.push`: librdkafka 2.8 waits for
    /// KIP-714 telemetry when a client is destroyed, and where the broker takes none (Tansu)
    /// that wait now and then lasted a whole second: a one-line CLI query took 1.06 s instead
    /// of 0.06 s. Set it to `true` for a cluster that collects client metrics.
    static let clientDefaults = ["enable.metrics.push": "false"]

    /// Builds an `rd_kafka_conf_t`; the caller owns it until `rd_kafka_new` takes it.
    func makeNative() throws(KafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var errstr = [CChar](repeating: 0, count: 512)
        // Sorted so that a bad configuration fails the same way every time.
        for (key, value) in withDefaults(Self.clientDefaults).properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                var message = string(fromBuffer: errstr)
                if KafkaSecurity.isSecret(key), !value.isEmpty { message = message.replacingOccurrences(of: value, with: "***") }
                throw .configuration(property: key, message: message)
            }
        }
        KafkaLog.install(on: conf)
        return conf
    }
}

/// The version of the librdkafka library loaded at run time.
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }

/// Text from a NUL-terminated error buffer librdkafka filled in.
func string(fromBuffer buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
