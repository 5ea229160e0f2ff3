import Foundation
import Testing
import YishiKafka
import YishiTestSupport

/// `KafkaSecurity`: where SASL/TLS settings come from, what is checked before connecting,
/// and that secrets never reach a printed text. No broker needed.
@Suite("Kafka security settings")
struct SecuritySettingsTests {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName("security-settings"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["ca.pem", "client.pem", "client.key"] { try "pem".write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        try "file-Secret-1\n".write(to: dir.appendingPathComponent("pw"), atomically: true, encoding: .utf8)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @Test("the built-in librdkafka has TLS, SASL PLAIN and SCRAM")
    func builtinFeatures() {
        let features = Set(KafkaFeatures.builtin)
        #expect(features.isSuperset(of: ["ssl", "sasl_plain", "sasl_scram"]), "builtin.features: \(features.sorted())")
    }

    @Test("a librdkafka properties file, then the environment, then flags; the password from a file or the environment")
    func sources() throws {
        try """
            # hub client
            security.protocol = SASL_SSL
            sasl.mechanism: SCRAM-SHA-256
            sasl.username=from-file
            sasl.password=props-Secret-2
            ssl.ca.location=\(path("ca.pem"))
            ! a comment too
            ssl.endpoint.identification.algorithm=https
            """.write(to: dir.appendingPathComponent("client.properties"), atomically: true, encoding: .utf8)
        var inputs = KafkaSecurity.Inputs()
        inputs.propertiesFile = path("client.properties")
        let fromFile = try KafkaSecurity.resolve(inputs, environment: [:])
        #expect(fromFile.properties["sasl.mechanisms"] == "SCRAM-SHA-256" && fromFile.properties["sasl.mechanism"] == nil)
        #expect(fromFile.properties["sasl.password"] == "props-Secret-2" && fromFile.username == "from-file")

        let env = ["YISHI_SASL_USERNAME": "from-env", "YISHI_SASL_PASSWORD": "env-Secret-3", "YISHI_SASL_MECHANISM": "SCRAM-SHA-512"]
        let withEnv = try KafkaSecurity.resolve(inputs, environment: env)
        #expect(withEnv.username == "from-env" && withEnv.mechanism == "SCRAM-SHA-512" && withEnv.properties["sasl.password"] == "env-Secret-3")

        inputs.username = "from-flag"
        inputs.passwordFile = path("pw")
        let withFlags = try KafkaSecurity.resolve(inputs, environment: env)
        #expect(withFlags.username == "from-flag" && withFlags.properties["sasl.password"] == "file-Secret-1")
        let config = withFlags.apply(to: KafkaConfig(bootstrapServers: "b:9093", ["client.id": "x"]))
        #expect(config["security.protocol"] == "SASL_SSL" && config["client.id"] == "x" && config["sasl.password"] == "file-Secret-1")
        #expect(config["ssl.endpoint.identification.algorithm"] == "https")
    }

    @Test("secrets are shown as *** in descriptions and configuration dumps")
    func redaction() throws {
        var inputs = KafkaSecurity.Inputs()
        inputs.securityProtocol = "SASL_SSL"; inputs.mechanism = "PLAIN"; inputs.username = "u"; inputs.passwordFile = path("pw")
        inputs.caLocation = path("ca.pem")
        let s = try KafkaSecurity.resolve(inputs, environment: ["YISHI_SSL_KEY_PASSWORD": "key-Secret-4"])
        let config = s.apply(to: KafkaConfig(bootstrapServers: "b:9093"))
        for text in [s.description, "\(s.redacted)", config.description, "\(s)"] {
            #expect(!text.contains("file-Secret-1") && !text.contains("key-Secret-4"), "\(text)")
        }
        #expect(config.description.contains("sasl.password=***") && config.description.contains("ssl.key.password=***"))
        #expect(s.description.contains("mechanism PLAIN, user 'u'") && s.description.contains("host name verified"))
    }

    @Test("settings that cannot work are refused before any connection, naming the property and the flag")
    func validation() throws {
        func refusal(_ edit: (inout KafkaSecurity.Inputs) -> Void, env: [String: String] = [:]) -> String {
            var i = KafkaSecurity.Inputs()
            i.securityProtocol = "SASL_SSL"; i.mechanism = "SCRAM-SHA-512"; i.username = "hub"; i.passwordFile = path("pw")
            i.caLocation = path("ca.pem")
            edit(&i)
            do { _ = try KafkaSecurity.resolve(i, environment: env); return "accepted" } catch { return error.message }
        }
        #expect(refusal { _ in } == "accepted")
        #expect(refusal { $0.passwordFile = nil }.hasPrefix("missing credentials: no SASL password for user 'hub' (SCRAM-SHA-512)"))
        #expect(refusal { $0.username = nil }.contains("missing credentials") && refusal { $0.username = nil }.contains("--sasl-username"))
        #expect(refusal { $0.mechanism = "GSSAPI" }.contains("sasl.mechanisms 'GSSAPI' is not supported"))
        #expect(refusal { $0.securityProtocol = "TLS" }.contains("security.protocol 'TLS' is not one of"))
        #expect(refusal { $0.caLocation = path("missing.pem") } == "ssl.ca.location \(path("missing.pem")) does not exist (--ssl-ca)")
        #expect(refusal { $0.certificateLocation = path("client.pem") }.contains("needs its private key"))
        #expect(refusal { $0.passwordFile = path("nope") }.contains("cannot read the SASL password file \(path("nope"))"))
        #expect(refusal { $0.securityProtocol = "PLAINTEXT" }.contains("SASL credentials are given but security.protocol is PLAINTEXT"))
        #expect(refusal { $0.securityProtocol = "SASL_PLAINTEXT" }.contains("ssl.ca.location is given but security.protocol is SASL_PLAINTEXT"))
        try "".write(to: dir.appendingPathComponent("empty"), atomically: true, encoding: .utf8)
        #expect(refusal { $0.passwordFile = path("empty") } == "the SASL password file \(path("empty")) is empty")
        try "security.protocol SASL_SSL\n".write(to: dir.appendingPathComponent("bad.properties"), atomically: true, encoding: .utf8)
        #expect(refusal { $0.propertiesFile = path("bad.properties") } == "\(path("bad.properties")):1: not a 'property=value' line")
        // No security at all is fine.
        #expect(try KafkaSecurity.resolve(KafkaSecurity.Inputs(), environment: [:]) == .none)
    }
}

extension Error {
    var message: String { (self as? KafkaSecurityError)?.message ?? "\(self)" }
}
