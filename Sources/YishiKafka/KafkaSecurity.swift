import CRdKafka
import Foundation
import Synchronization

/// How a client proves who it is and protects the connection: librdkafka's security
/// properties (`security.protocol`, `sasl.mechanisms`, `sasl.username`, `sasl.password`,
/// `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`, `ssl.key.password`,
/// `ssl.endpoint.identification.algorithm`, … as in librdkafka's CONFIGURATION.md), plus any
/// other librdkafka property a properties file gives.
///
/// Every hub client takes its settings from one `KafkaSecurity` (through `HubConnection` or
/// the operator CLI's `Hub`). Secret values (`sasl.password`, `ssl.key.password`, …) never
/// appear in `description`, `redacted` or an error: they are shown as `***`.
public struct KafkaSecurity: Sendable, Equatable, CustomStringConvertible {
    /// librdkafka properties, secrets included. Apply with `apply(to:)`.
    public private(set) var properties: [String: String]

    /// No security: `security.protocol=plaintext`, librdkafka's default.
    public static let none = KafkaSecurity(properties: [:])

    public init(properties: [String: String]) { self.properties = properties }

    /// Properties whose values are secrets: never printed, never taken from a command line.
    public static let secretProperties: Set<String> = [
        "sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem", "ssl_key.pem",
        "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config", "ssl.truststore.password",
    ]

    /// `security.protocol` values librdkafka accepts (case-insensitive).
    public static let protocols = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]
    /// `sasl.mechanisms` the hub supports.
    public static let mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

    public static func isSecret(_ property: String) -> Bool {
        secretProperties.contains(property) || property.hasSuffix(".password") || property.hasSuffix(".secret")
    }

    /// `properties` with every secret value replaced by `***`.
    public static func redacted(_ properties: [String: String]) -> [String: String] {
        properties.reduce(into: [:]) { out, kv in out[kv.key] = isSecret(kv.key) ? "***" : kv.value }
    }

    public var redacted: [String: String] { Self.redacted(properties) }

    /// Lowercased `security.protocol` (`plaintext` when unset).
    public var securityProtocol: String { (properties["security.protocol"] ?? "plaintext").lowercased() }
    public var usesSASL: Bool { securityProtocol.hasPrefix("sasl_") }
    public var usesTLS: Bool { securityProtocol.hasSuffix("ssl") }
    /// `sasl.mechanisms` (librdkafka also accepts the alias `sasl.mechanism`); `GSSAPI` is librdkafka's default.
    public var mechanism: String { (properties["sasl.mechanisms"] ?? properties["sasl.mechanism"] ?? "GSSAPI").uppercased() }
    public var username: String? { properties["sasl.username"] }

    /// One line for logs and errors, without secrets: protocol, mechanism, user, CA, client
    /// certificate and whether the broker's host name is verified.
    public var description: String {
        var parts = ["security.protocol=\(securityProtocol.uppercased())"]
        if usesSASL {
            parts.append("mechanism \(mechanism)")
            parts.append("user '\(username ?? "")'")
        }
        if usesTLS {
            parts.append("CA \(properties["ssl.ca.location"] ?? "(system default)")")
            if let cert = properties["ssl.certificate.location"] { parts.append("client certificate \(cert)") }
            let algorithm = properties["ssl.endpoint.identification.algorithm"] ?? "https"
            parts.append(algorithm == "none" ? "host name NOT verified" : "host name verified")
        }
        return parts.joined(separator: ", ")
    }

    /// `config` with these properties added (they win over what `config` had).
    public func apply(to config: KafkaConfig) -> KafkaConfig {
        var copy = config
        for (key, value) in properties { copy[key] = value }
        return copy
    }

    // MARK: Reading

    /// The raw inputs of a client's security settings, before they are resolved: what flags
    /// gave (`nil`: not given). File paths are read by `resolve`.
    public struct Inputs: Sendable, Equatable {
        /// A librdkafka properties file (`key=value` lines, `#` comments): any librdkafka property.
        public var propertiesFile: String?
        public var securityProtocol: String?
        public var mechanism: String?
        public var username: String?
        /// A file whose content (trailing newline stripped) is the SASL password.
        public var passwordFile: String?
        public var caLocation: String?
        public var certificateLocation: String?
        public var keyLocation: String?
        /// A file holding the password of the client's private key.
        public var keyPasswordFile: String?
        public init() {}
    }

    /// The environment variables `resolve` reads, each the counterpart of an `Inputs` field.
    /// `YISHI_SASL_PASSWORD` and `YISHI_SSL_KEY_PASSWORD` carry the secrets themselves.
    public static let environmentVariables = [
        "YISHI_KAFKA_CONFIG", "YISHI_SECURITY_PROTOCOL", "YISHI_SASL_MECHANISM", "YISHI_SASL_USERNAME",
        "YISHI_SASL_PASSWORD", "YISHI_SASL_PASSWORD_FILE", "YISHI_SSL_CA_LOCATION", "YISHI_SSL_CERTIFICATE_LOCATION",
        "YISHI_SSL_KEY_LOCATION", "YISHI_SSL_KEY_PASSWORD", "YISHI_SSL_KEY_PASSWORD_FILE",
    ]

    /// Resolves the settings: the properties file first, then the environment, then flags
    /// (a later source wins), then checks them (`validate`).
    /// - Throws: `KafkaSecurityError` naming the file, flag or property that is wrong.
    public static func resolve(_ inputs: Inputs, environment env: [String: String]) throws(KafkaSecurityError) -> KafkaSecurity {
        var p: [String: String] = [:]
        if let file = inputs.propertiesFile ?? env["YISHI_KAFKA_CONFIG"] {
            p = try readPropertiesFile(file)
        }
        func set(_ key: String, _ flag: String?, _ variable: String) {
            if let v = flag ?? env[variable], !v.isEmpty { p[key] = v }
        }
        set("security.protocol", inputs.securityProtocol, "YISHI_SECURITY_PROTOCOL")
        set("sasl.mechanisms", inputs.mechanism, "YISHI_SASL_MECHANISM")
        set("sasl.username", inputs.username, "YISHI_SASL_USERNAME")
        set("ssl.ca.location", inputs.caLocation, "YISHI_SSL_CA_LOCATION")
        set("ssl.certificate.location", inputs.certificateLocation, "YISHI_SSL_CERTIFICATE_LOCATION")
        set("ssl.key.location", inputs.keyLocation, "YISHI_SSL_KEY_LOCATION")
        if let alias = p.removeValue(forKey: "sasl.mechanism"), p["sasl.mechanisms"] == nil { p["sasl.mechanisms"] = alias }
        if let secret = env["YISHI_SASL_PASSWORD"], !secret.isEmpty { p["sasl.password"] = secret }
        if let file = inputs.passwordFile ?? env["YISHI_SASL_PASSWORD_FILE"] {
            p["sasl.password"] = try readSecretFile(file, what: "SASL password")
        }
        if let secret = env["YISHI_SSL_KEY_PASSWORD"], !secret.isEmpty { p["ssl.key.password"] = secret }
        if let file = inputs.keyPasswordFile ?? env["YISHI_SSL_KEY_PASSWORD_FILE"] {
            p["ssl.key.password"] = try readSecretFile(file, what: "private key password")
        }
        var security = KafkaSecurity(properties: p)
        // Host name verification on, whatever the loaded librdkafka's default (https since 2.0).
        if security.usesTLS, security.properties["ssl.endpoint.identification.algorithm"] == nil {
            security.properties["ssl.endpoint.identification.algorithm"] = "https"
        }
        try security.validate()
        return security
    }

    /// Reads a librdkafka properties file: `key=value` (or `key: value`) lines; blank lines
    /// and lines starting with `#` or `!` are skipped; whitespace around keys and values is trimmed.
    /// - Throws: `KafkaSecurityError` naming the file and line of a line without `=`.
    public static func readPropertiesFile(_ path: String) throws(KafkaSecurityError) -> [String: String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KafkaSecurityError("cannot read the Kafka properties file \(path): \(Self.reason(error))")
        }
        var out: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            guard let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw KafkaSecurityError("\(path):\(n + 1): not a 'property=value' line")
            }
            let key = line[..<sep].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw KafkaSecurityError("\(path):\(n + 1): a value without a property name") }
            out[key] = line[line.index(after: sep)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    /// The content of a secret file with one trailing line break removed.
    static func readSecretFile(_ path: String, what: String) throws(KafkaSecurityError) -> String {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KafkaSecurityError("cannot read the \(what) file \(path): \(Self.reason(error))")
        }
        var secret = Substring(text)
        if secret.hasSuffix("\n") { secret = secret.dropLast() }
        if secret.hasSuffix("\r") { secret = secret.dropLast() }
        guard !secret.isEmpty else { throw KafkaSecurityError("the \(what) file \(path) is empty") }
        return String(secret)
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
           let code = POSIXErrorCode(rawValue: Int32(underlying.code)) {
            return String(cString: strerror(code.rawValue))
        }
        return ns.localizedDescription
    }

    /// Checks the settings before any connection: a known protocol; for SASL a supported
    /// mechanism, a user name and a password; for TLS readable CA, certificate and key
    /// files (a certificate needs its key); and that the loaded librdkafka was built with
    /// what the settings need (`builtin.features`: `ssl`, `sasl_plain`, `sasl_scram`).
    /// - Throws: `KafkaSecurityError` naming the property, and the flag or variable that sets it.
    public func validate() throws(KafkaSecurityError) {
        guard Self.protocols.contains(securityProtocol) else {
            throw KafkaSecurityError("security.protocol '\(properties["security.protocol"] ?? "")' is not one of \(Self.protocols.map { $0.uppercased() }.joined(separator: ", ")) (--security-protocol, YISHI_SECURITY_PROTOCOL)")
        }
        let features = Set(KafkaFeatures.builtin)
        if usesTLS, !features.contains("ssl") {
            throw KafkaSecurityError("the loaded librdkafka \(librdkafkaVersion) was built without TLS (builtin.features: \(KafkaFeatures.builtin.joined(separator: ","))); rebuild it with OpenSSL (scripts/setup-librdkafka.sh)")
        }
        if usesSASL {
            guard Self.mechanisms.contains(mechanism) else {
                let given = properties["sasl.mechanisms"] ?? properties["sasl.mechanism"]
                let what = given.map { "sasl.mechanisms '\($0)' is not supported" }
                    ?? "sasl.mechanisms is not set (librdkafka would use GSSAPI, which the hub does not support)"
                throw KafkaSecurityError("\(what); use one of \(Self.mechanisms.joined(separator: ", ")) (--sasl-mechanism, YISHI_SASL_MECHANISM)")
            }
            let feature = mechanism == "PLAIN" ? "sasl_plain" : "sasl_scram"
            guard features.contains(feature) else {
                throw KafkaSecurityError("the loaded librdkafka \(librdkafkaVersion) was built without \(feature) (builtin.features: \(KafkaFeatures.builtin.joined(separator: ","))); rebuild it (scripts/setup-librdkafka.sh)")
            }
            guard let user = username, !user.isEmpty else {
                throw KafkaSecurityError("missing credentials: \(securityProtocol.uppercased()) with \(mechanism) needs a user name (sasl.username; --sasl-username, YISHI_SASL_USERNAME)")
            }
            guard let password = properties["sasl.password"], !password.isEmpty else {
                throw KafkaSecurityError("missing credentials: no SASL password for user '\(user)' (\(mechanism)); give it in a file (--sasl-password-file, YISHI_SASL_PASSWORD_FILE, or sasl.password in the properties file) or in YISHI_SASL_PASSWORD")
            }
        } else if properties["sasl.username"] != nil || properties["sasl.password"] != nil {
            throw KafkaSecurityError("SASL credentials are given but security.protocol is \(securityProtocol.uppercased()): use SASL_SSL or SASL_PLAINTEXT (--security-protocol)")
        }
        if usesTLS {
            for (key, flag) in [("ssl.ca.location", "--ssl-ca"), ("ssl.certificate.location", "--ssl-cert"), ("ssl.key.location", "--ssl-key")] {
                guard let path = properties[key], path != "probe" else { continue }
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                    throw KafkaSecurityError("\(key) \(path) does not exist (\(flag))")
                }
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw KafkaSecurityError("\(key) \(path) is not readable (\(flag))")
                }
            }
            if (properties["ssl.certificate.location"] == nil) != (properties["ssl.key.location"] == nil) {
                throw KafkaSecurityError("a client certificate needs its private key and the other way round: give both ssl.certificate.location and ssl.key.location (--ssl-cert, --ssl-key)")
            }
        } else {
            for key in ["ssl.ca.location", "ssl.certificate.location", "ssl.key.location"] where properties[key] != nil {
                throw KafkaSecurityError("\(key) is given but security.protocol is \(securityProtocol.uppercased()): use SSL or SASL_SSL (--security-protocol)")
            }
        }
    }
}

/// A security setting that cannot work; the message names the property, flag or file.
public struct KafkaSecurityError: Error, Sendable, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What the loaded librdkafka was built with.
public enum KafkaFeatures {
    /// `builtin.features`, e.g. `["gzip", "snappy", "ssl", "sasl", "sasl_plain", "sasl_scram", …]`.
    public static var builtin: [String] {
        let conf = rd_kafka_conf_new()!
        defer { rd_kafka_conf_destroy(conf) }
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard rd_kafka_conf_get(conf, "builtin.features", &buffer, &size) == RD_KAFKA_CONF_OK else { return [] }
        return string(fromBuffer: buffer).split(separator: ",").map(String.init)
    }
}

/// Catches the broker's refusal of a client's credentials or TLS handshake. librdkafka
/// reports a SASL failure as `_AUTHENTICATION` and a TLS failure as `_SSL` through the error
/// callback, as non-fatal errors, and then keeps reconnecting; the first such report is kept
/// here, rewritten to name the broker, mechanism and user, and the client's blocking calls
/// throw it instead of waiting on.
final class SecurityLatch: Sendable {
    private let failure = Mutex<KafkaError?>(nil)
    private let context: String
    private let bootstrap: String

    init(_ config: KafkaConfig) {
        let security = KafkaSecurity(properties: config.properties)
        bootstrap = config["bootstrap.servers"] ?? "?"
        context = security.description
    }

    var current: KafkaError? { failure.withLock { $0 } }

    /// Returns `error`, rewritten as `.authentication` when it is a SASL or TLS refusal
    /// (and remembered as the client's failure).
    func observe(_ error: KafkaError) -> KafkaError {
        let codes: Set<Int32> = [RD_KAFKA_RESP_ERR__AUTHENTICATION.rawValue, RD_KAFKA_RESP_ERR__SSL.rawValue,
                                 RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED.rawValue,
                                 RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM.rawValue, RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE.rawValue]
        // An SSL handshake that fails is reported as _TRANSPORT by some code paths.
        let tlsTransport = error.code == RD_KAFKA_RESP_ERR__TRANSPORT.rawValue && error.message.contains("SSL handshake failed")
        guard codes.contains(error.code) || tlsTransport else { return error }
        let what = error.code == RD_KAFKA_RESP_ERR__SSL.rawValue || tlsTransport ? "TLS handshake" : "SASL authentication"
        let rewritten = KafkaError(kind: .authentication, code: error.code, name: error.name,
                                   message: "\(what) refused by the broker (bootstrap \(bootstrap); \(context)): \(error.message)",
                                   operation: error.operation)
        return failure.withLock { kept in
            if kept == nil { kept = rewritten }
            return rewritten
        }
    }

    func check() throws(KafkaError) {
        if let failure = current { throw failure }
    }
}
