import Foundation
import Testing
@testable import Messaging
import SagaEngine
import YishiKafka

/// Inputs the standards define more precisely than a naive parser: ECMA-262 `pattern`
/// semantics (JSON Schema), RFC 3339 leap seconds.
@Suite struct StandardsTests {
    func application(_ edit: (inout [String: JSON]) -> Void) throws -> JSON {
        let line = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
            .split(separator: "\n").first!
        guard case .object(var o) = try JSON.parse(Data(line.utf8)) else { throw CocoaError(.fileReadCorruptFile) }
        edit(&o)
        return .object(o)
    }

    var applicationSchema: JSONSchema { registry[MessageType.applicationSubmitted]! }

    /// ICU's `$` also matches before a final newline; ECMA-262's (JSON Schema's) does not.
    @Test func aFinalNewlineDoesNotMatchDollar() throws {
        let schema = applicationSchema
        #expect(schema.validate(try application { _ in }).isEmpty)
        let id = schema.validate(try application { $0["applicationId"] = "APP-20260302-000777\n" })
        #expect(id.map(\.keyword) == ["pattern"] && id.map(\.path) == ["$.applicationId"], "\(id)")
        let phone = schema.validate(try application {
            guard case .object(var c) = $0["contact"] else { return }
            c["phone"] = "13800138000\n"
            $0["contact"] = .object(c)
        })
        #expect(phone.map(\.keyword) == ["pattern"] && phone.map(\.path) == ["$.contact.phone"], "\(phone)")
    }

    @Test(arguments: [
        // pattern, matches, does not match
        (#"^\d+$"#, "0123", "١٢٣"),            // \d: ASCII digits only (not Arabic-Indic)
        (#"^\w+$"#, "abc_9", "é"),              // \w: [A-Za-z0-9_]
        (#"^\s$"#, "\u{FEFF}", "\u{85}"),        // \s: ECMA WhiteSpace + LineTerminator (BOM yes, NEL no)
        (#"^[\d]$"#, "7", "߀"),                 // inside a class too
        (#"^[^\W]$"#, "a", "é"),
        (#"^[\D]$"#, "a", "5"),                 // complements inside a class
        (#"^[\S]$"#, "a", "\u{3000}"),
        (#"^[x\W]$"#, "-", "b"),
        (#"^[[]$"#, "[", "]"),                   // a literal [ in a class
        (#"^a.c$"#, "a\u{0B}c", "a\nc"),         // . excludes only LF, CR, U+2028, U+2029
        (#"\bfoo\b"#, "éfooé", "xfoox"),     // \b on ASCII word characters (é is not one)
        (#"^[a$]$"#, "$", "b"),                  // $ in a class is literal
        (#"^x$"#, "x", "x\n"),
        (#"^[]$"#, "", ""),                      // empty class matches nothing
    ])
    func ecmaSemantics(_ pattern: String, _ yes: String, _ no: String) throws {
        let s = try JSONSchema(.object(["pattern": .string(pattern)]))
        if pattern != #"^[]$"# { #expect(s.validate(.string(yes)).isEmpty, "\(pattern) should match \(yes.debugDescription)") }
        #expect(s.validate(.string(no)).map(\.keyword) == ["pattern"], "\(pattern) should not match \(no.debugDescription)")
    }

    /// RFC 3339 §5.7: a leap second only as the last second of a UTC day (23:59:60 after the offset).
    @Test func leapSecondOnlyAt235960UTC() throws {
        #expect(RFC3339.parse("2026-03-02T10:15:60+08:00") == nil)
        #expect(Instant(rfc3339: "2026-03-02T10:15:60+08:00") == nil)
        #expect(Instant(rfc3339: "2016-12-31T23:59:60+08:00") == nil)   // 15:59:60 UTC
        #expect(Instant(rfc3339: "2017-01-01T07:59:60+08:00")?.ms == 1_483_228_799_999)
        #expect(Instant(rfc3339: "1998-12-31T15:59:60.123-08:00") != nil)
        let schema = try JSONSchema(.object(["format": "date-time"]))
        #expect(schema.validate("2026-03-02T10:15:60+08:00").map(\.keyword) == ["format"])
        let headers = replacing(sampleEnvelope().headers, "ce_time", with: "2026-03-02T10:15:60+08:00")
        #expect(throws: EnvelopeError.badTime("2026-03-02T10:15:60+08:00")) { try Envelope(headers: headers) }
    }
}

/// CloudEvents Kafka binding: header names are case-sensitive and datacontenttype is
/// `content-type`; what other SDKs write instead is named in the rejection.
@Suite struct HeaderSpellingTests {
    @Test(arguments: ["Content-Type", "ce_datacontenttype", "CONTENT-TYPE"])
    func contentTypeSpelledByAnotherSDKIsNamed(_ spelling: String) {
        let headers = sampleEnvelope().headers.map { $0.name == "content-type" ? KafkaHeader(spelling, "application/json") : $0 }
        #expect(throws: EnvelopeError.missingAttribute("content-type", foundInstead: spelling)) { try Envelope(headers: headers) }
        let r = MessageCheck.validate(headers: headers, value: Data("{}".utf8), topic: "events.tax", registry: registry,
                                      policy: SourcePolicy.standard).failure
        #expect(r?.errorClass == .missingHeader && r?.header == "content-type")
        #expect(r?.message.contains("found '\(spelling)' instead") == true, "\(String(describing: r))")
    }

    @Test func ceAttributeInHTTPSpellingIsNamed() {
        let headers = sampleEnvelope().headers.map { $0.name == "ce_id" ? KafkaHeader("ce-id", "x") : $0 }
        #expect(throws: EnvelopeError.missingAttribute("ce_id", foundInstead: "ce-id")) { try Envelope(headers: headers) }
    }
}

extension Result {
    var failure: Failure? { if case .failure(let f) = self { return f }; return nil }
}
