import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// The seed applications (`seeds/applications`), for tests, benchmarks and the demo.
public enum SeedApplications {
    /// Applications the manifest expects to complete, in file order.
    public static func valid(repoRoot: URL, limit: Int = .max) throws -> [JSONValue] {
        let manifest = try JSONValue.parse(Data(contentsOf: repoRoot.appendingPathComponent("seeds/applications/manifest.json")))
        let lines = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        var result: [JSONValue] = []
        for line in lines where result.count < limit {
            let form = try JSONValue.parse(String(line))
            guard let id = form["applicationId"]?.stringValue,
                  manifest["applications"]?[id]?["expected"]?.stringValue == "complete" else { continue }
            result.append(form)
        }
        return result
    }

    /// `count` enterprise-opening applications cloned from the valid seeds, with ids `APP-<tag>-00000`….
    public static func cloned(repoRoot: URL, count: Int, tag: String) throws -> [JSONValue] {
        let seeds = try valid(repoRoot: repoRoot).filter { $0["bundle"]?.stringValue == "enterprise-opening" }
        return (0..<count).map { n in
            guard case .object(var form) = seeds[n % seeds.count] else { return seeds[0] }
            form["applicationId"] = .string("APP-\(tag)-\(String(format: "%05d", n))")
            return .object(form)
        }
    }

    /// Publishes applications as a front desk would: CloudEvents binary mode, keyed by application id.
    public static func submit(_ forms: [JSONValue], topicPrefix: String, producer: KafkaProducer, time: Date) throws {
        for form in forms {
            let id = form["applicationId"]!.stringValue!
            let envelope = Envelope(source: "/frontdesk/test", type: MessageType.applicationSubmitted, time: time, subject: id)
            try producer.enqueue(envelope.record(topic: topicPrefix + "applications", key: id, data: Data(form.text().utf8)))
        }
        try producer.flush()
    }
}
