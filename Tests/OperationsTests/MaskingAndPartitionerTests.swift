import Foundation
import Messaging
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Personal data masking")
struct MaskingTests {
    @Test func freeTextMasksIDsAndMobilesOnly() {
        #expect(PersonalData.maskText("holder 11010519491231002X, tel 13800138000.") == "holder 110105********002X, tel 138****8000.")
        #expect(PersonalData.maskText("id=330110197803012598;") == "id=330110********2598;")
        // Not personal: a USCC, an epoch-millisecond timestamp, a 12-digit number, an id inside a longer digit run.
        for text in ["uscc 913301060000012345", "at 1772413200000", "n 138001380001", "x 1330110197803012598"] {
            #expect(PersonalData.maskText(text) == text, "\(text)")
        }
    }

    @Test func nativeDepartmentMessages() {
        let line = #"fddbr={"zjhm":"11010519491231002X","yddh":"13800138000"} 股东 330110197803012598，电话+8615223730237。"#
        #expect(PersonalData.maskText(line)
            == #"fddbr={"zjhm":"110105********002X","yddh":"138****8000"} 股东 330110********2598，电话+86152****0237。"#)
        // Longer digit runs are other numbers (20-digit 登记序号, 19-digit account), left alone;
        // so are USCCs, 12-digit numbers starting with 1 and 13-digit runs not starting with 86.
        let other = "djxh=10133010600000000001 acct=1202330100000000001 uscc=91330106MA2AXXXX0L sbbh=138001380001 t=1772413200000"
        #expect(PersonalData.maskText(other) == other)
        #expect(PersonalData.maskText("") == "")
        #expect(PersonalData.maskIdNumber("12345") == "*****" && PersonalData.maskPhone("12345") == "*****")
        #expect(PersonalData.maskName("欧阳娜娜") == "欧***" && PersonalData.maskName("") == "")
    }

    @Test func jsonByFieldNameAndByValue() throws {
        let form = try JSONValue.parse(#"""
        {"legalRepresentative":{"name":"张伟","idNumber":"11010519491231002X","phone":"13800138000"},
         "shareholders":[{"name":"欧阳娜娜","idNumber":"110105194912310038"}],
         "contact":{"name":"李四","phone":"139 0013 8000"},
         "company":{"proposedName":"杭州云栖茶饮有限公司"},
         "legalRepresentativeName":"王五","note":"call 13900139000"}
        """#)
        let m = PersonalData.mask(form)
        #expect(m["legalRepresentative"]?["name"] == "张*")
        #expect(m["legalRepresentative"]?["idNumber"] == "110105********002X")
        #expect(m["legalRepresentative"]?["phone"] == "138****8000")
        #expect(m["shareholders"]?.arrayValue?.first?["name"] == "欧***")
        #expect(m["contact"]?["name"] == "李*")
        #expect(m["contact"]?["phone"]?.stringValue?.contains("0013") == false, "a phone field is masked whatever its shape")
        #expect(m["company"]?["proposedName"] == "杭州云栖茶饮有限公司", "company names are not personal")
        #expect(m["legalRepresentativeName"] == "王*")
        #expect(m["note"] == "call 139****9000")
    }

    @Test func logLinesCarryNoFullNumbers() {
        let lines = Recorder<String>()
        let log = JSONLog(component: "test", sink: { lines.append($0) })
        log.warn("rejected 11010519491231002X", ["reason": "phone 13800138000 is not valid"])
        let line = lines.all.joined()
        #expect(!line.contains("11010519491231002X") && !line.contains("13800138000"), "\(line)")
        #expect(line.contains("110105********002X") && line.contains("138****8000"))
    }
}

@Suite("murmur2 partitioner (Kafka's, as librdkafka's murmur2_random)")
struct PartitionerTests {
    @Test("Kafka's own reference values (UtilsTest)")
    func javaReferenceValues() {
        let cases: [(String, Int32)] = [("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536),
                                        ("a-little-bit-longer-string", -1_486_304_829),
                                        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971), ("abc", 479_470_107)]
        for (key, expected) in cases { #expect(KafkaPartitioner.murmur2(Array(key.utf8)) == expected, "\(key)") }
    }

    @Test("agrees with librdkafka: records produced by key land where we compute", .timeLimit(.minutes(1)))
    func agreesWithLibrdkafka() async throws {
        let topic = uniqueName("murmur")
        let partitions: Int32 = 7
        let config = try Broker.config(["partitioner": "murmur2_random"])
        try await KafkaAdmin(config: config).ensureTopics([TopicSpec(topic, partitions: partitions)])
        let producer = try KafkaProducer(config: config)
        let keys = (0..<200).map { "APP-20260302-\(String(format: "%06d", $0 * 7919))" } + ["a", "张伟", "ctl-3f2a"]
        for key in keys {
            let report = try await producer.send(ProducerRecord(topic: topic, key: key, value: Data("x".utf8)))
            #expect(report.partition == KafkaPartitioner.partition(forKey: key, partitions: partitions), "key '\(key)'")
        }
    }
}
