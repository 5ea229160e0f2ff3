import Foundation
import YishiKafka

/// SASL and TLS flags of every command that connects to Kafka (services, operator commands,
/// demo, front desk). They resolve to one `KafkaSecurity` that every client of the process uses.
enum SecurityOptions {
    static let help = """
        Kafka security (SASL/TLS; a properties file uses librdkafka's own property names):
          --kafka-config FILE    librdkafka properties file: security.protocol, sasl.mechanisms, sasl.username,
                                 sasl.password, ssl.ca.location, ssl.certificate.location, ssl.key.location,
                                 ssl.key.password, ssl.endpoint.identification.algorithm, ... (env YISHI_KAFKA_CONFIG)
          --security-protocol P  PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (env YISHI_SECURITY_PROTOCOL)
          --sasl-mechanism M     PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env YISHI_SASL_MECHANISM)
          --sasl-username U      SASL user (env YISHI_SASL_USERNAME)
          --sasl-password-file F file holding the SASL password (env YISHI_SASL_PASSWORD_FILE; or the password
                                 itself in YISHI_SASL_PASSWORD). A password on the command line is refused.
          --ssl-ca FILE          CA certificate(s) that signed the broker's certificate, PEM (env YISHI_SSL_CA_LOCATION)
          --ssl-cert FILE        client certificate, PEM (env YISHI_SSL_CERTIFICATE_LOCATION)
          --ssl-key FILE         client private key, PEM (env YISHI_SSL_KEY_LOCATION)
          --ssl-key-password-file F  file holding the private key's password (env YISHI_SSL_KEY_PASSWORD_FILE,
                                 or YISHI_SSL_KEY_PASSWORD)
          The broker's host name is verified against its certificate (ssl.endpoint.identification.algorithm=https)
          unless the properties file sets it to none. Secrets are never printed: logs and errors show ***.
          A refused login or TLS handshake ends the command within seconds with exit code 2, naming the broker,
          mechanism and user.
        """

    /// Flags that would put a secret on the command line (visible in `ps` and shell history).
    static let refusedFlags = ["--sasl-password", "--ssl-key-password", "--password"]

    /// A usage error when `tokens` carry a secret on the command line; names the flag, never the value.
    static func refuseSecrets(in tokens: [String]) throws {
        for token in tokens {
            let name = token.split(separator: "=", maxSplits: 1).first.map(String.init) ?? token
            guard refusedFlags.contains(name) else { continue }
            let file = name == "--ssl-key-password" ? "--ssl-key-password-file FILE or YISHI_SSL_KEY_PASSWORD"
                : "--sasl-password-file FILE or YISHI_SASL_PASSWORD"
            throw UsageError("\(name) is refused: a secret on the command line is visible to every user in `ps` and stays in shell history; use \(file) (or sasl.password in a --kafka-config file readable only by the service)")
        }
    }

    /// Reads the security flags (and their environment variables) and checks them.
    static func read(_ args: inout Arguments) throws -> KafkaSecurity {
        try refuseSecrets(in: args.tokens)
        var inputs = KafkaSecurity.Inputs()
        inputs.propertiesFile = try args.option("--kafka-config")
        inputs.securityProtocol = try args.option("--security-protocol")
        inputs.mechanism = try args.option("--sasl-mechanism")
        inputs.username = try args.option("--sasl-username")
        inputs.passwordFile = try args.option("--sasl-password-file")
        inputs.caLocation = try args.option("--ssl-ca")
        inputs.certificateLocation = try args.option("--ssl-cert")
        inputs.keyLocation = try args.option("--ssl-key")
        inputs.keyPasswordFile = try args.option("--ssl-key-password-file")
        return try KafkaSecurity.resolve(inputs, environment: ProcessInfo.processInfo.environment)
    }
}
