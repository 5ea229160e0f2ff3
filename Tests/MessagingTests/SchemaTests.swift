import Foundation
import Testing
@testable import Messaging

/// Each keyword accepting one value and rejecting another, with the path and keyword reported.
@Suite struct SchemaKeywordTests {
    func schema(_ text: String) throws -> JSONSchema { try JSONSchema(json(text)) }

    /// The single violation of `value` (asserting there is exactly one).
    func violation(_ s: JSONSchema, _ value: String) -> SchemaViolation? {
        let v = s.validate(json(value))
        #expect(v.count == 1, "\(v)")
        return v.first
    }

    @Test(arguments: [
        // schema, valid, invalid, keyword, path
        (#"{"type":"string"}"#, #""a""#, "1", "type", "$"),
        (#"{"type":["string","null"]}"#, "null", "true", "type", "$"),
        (#"{"type":"integer"}"#, "3.0", "3.5", "type", "$"),
        (#"{"type":"number"}"#, "3", #""3""#, "type", "$"),
        (#"{"type":"boolean"}"#, "false", "0", "type", "$"),
        (#"{"properties":{"a":{"type":"object","properties":{"b":{"type":"string"}}}}}"#, #"{"a":{"b":"x"}}"#, #"{"a":{"b":2}}"#, "type", "$.a.b"),
        (#"{"required":["id"]}"#, #"{"id":1}"#, #"{"x":1}"#, "required", "$.id"),
        (#"{"properties":{"a":{}},"additionalProperties":false}"#, #"{"a":1}"#, #"{"a":1,"b":2}"#, "additionalProperties", "$.b"),
        (#"{"additionalProperties":{"type":"integer"}}"#, #"{"n":1}"#, #"{"n":"1"}"#, "type", "$.n"),
        (#"{"properties":{"list":{"items":{"type":"string"}}}}"#, #"{"list":["a","b"]}"#, #"{"list":["a",2]}"#, "type", "$.list[1]"),
        (#"{"enum":["a",1,null]}"#, "1", #""b""#, "enum", "$"),
        (#"{"const":{"k":[1]}}"#, #"{"k":[1]}"#, #"{"k":[2]}"#, "const", "$"),
        (#"{"pattern":"^[0-9]{17}[0-9X]$"}"#, #""11010519491231002X""#, #""11010519491231002x""#, "pattern", "$"),
        (#"{"pattern":"b"}"#, #""abc""#, #""xyz""#, "pattern", "$"),
        (#"{"minLength":2}"#, #""张伟""#, #""张""#, "minLength", "$"),
        (#"{"maxLength":2}"#, #""张伟""#, #""张伟伟""#, "maxLength", "$"),
        (#"{"minimum":1}"#, "1", "0.5", "minimum", "$"),
        (#"{"maximum":10}"#, "10", "10.01", "maximum", "$"),
        (#"{"exclusiveMinimum":0}"#, "0.1", "0", "exclusiveMinimum", "$"),
        (#"{"exclusiveMaximum":5}"#, "4", "5", "exclusiveMaximum", "$"),
        (#"{"minItems":1}"#, "[1]", "[]", "minItems", "$"),
        (#"{"maxItems":1}"#, "[1]", "[1,2]", "maxItems", "$"),
        (#"{"format":"date-time"}"#, #""2026-03-02T09:15:00+08:00""#, #""2026-03-02 09:15""#, "format", "$"),
        (##"{"$defs":{"id":{"type":"string","pattern":"^[0-9]+$"}},"properties":{"p":{"properties":{"idNumber":{"$ref":"#/$defs/id"}}}}}"##,
         #"{"p":{"idNumber":"12"}}"#, #"{"p":{"idNumber":"1a"}}"#, "pattern", "$.p.idNumber"),
        (#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#, "2", "2.5", "anyOf", "$"),
        (#"{"oneOf":[{"type":"integer"},{"minimum":10}]}"#, "5", "12", "oneOf", "$"),
        (#"{"oneOf":[{"type":"integer"},{"type":"string"}]}"#, #""x""#, "null", "oneOf", "$"),
        (#"{"allOf":[{"minimum":1},{"maximum":3}]}"#, "2", "4", "maximum", "$"),
        (#"{"not":{"type":"null"}}"#, "0", "null", "not", "$"),
        (#"{"properties":{"odd key":{"type":"string"}}}"#, #"{"odd key":"v"}"#, #"{"odd key":1}"#, "type", "$['odd key']"),
        (#"{"properties":{"a":false}}"#, #"{}"#, #"{"a":1}"#, "false", "$.a"),
    ])
    func keyword(_ schemaText: String, _ valid: String, _ invalid: String, _ keyword: String, _ path: String) throws {
        let s = try schema(schemaText)
        #expect(s.validate(json(valid)).isEmpty, "\(schemaText) should accept \(valid)")
        let v = violation(s, invalid)
        #expect(v?.keyword == keyword)
        #expect(v?.path == path)
    }

    @Test func lengthCountsCharactersNotBytes() throws {
        let s = try schema(#"{"maxLength":1}"#)
        #expect(s.validate(json(#""é""#)).isEmpty)  // 2 bytes in UTF-8, one character
        #expect(s.validate(json(#""😀""#)).isEmpty)  // 4 bytes, one code point
    }

    @Test func collectsEveryViolationUpToTheLimit() throws {
        let s = try schema(#"{"required":["a","b","c"]}"#)
        #expect(s.validate(json("{}")).map(\.path) == ["$.a", "$.b", "$.c"])
        #expect(s.validate(json("{}"), limit: 2).count == 2)
    }

    @Test func recursiveRefToRoot() throws {
        let s = try schema(##"{"type":"object","properties":{"child":{"$ref":"#"},"n":{"type":"integer"}}}"##)
        #expect(s.validate(json(#"{"child":{"child":{"n":1}}}"#)).isEmpty)
        #expect(violation(s, #"{"child":{"child":{"n":"x"}}}"#)?.path == "$.child.child.n")
    }

    @Test(arguments: [
        (#"{"uniqueItems":true}"#, "/uniqueItems", "unsupported keyword"),
        (##"{"properties":{"a":{"$ref":"#/$defs/nope"}}}"##, "/properties/a/$ref", "does not resolve"),
        (#"{"type":"text"}"#, "/type", "unknown type"),
        (#"{"pattern":"("}"#, "/pattern", "invalid regular expression"),
        (#"{"minLength":-1}"#, "/minLength", "non-negative integer"),
        (#"{"anyOf":[]}"#, "/anyOf", "non-empty array"),
        ("[1]", "", "must be an object"),
    ])
    func loadErrorsPointIntoTheSchema(_ text: String, _ pointer: String, _ fragment: String) {
        #expect {
            try JSONSchema(json(text), file: "inline.json")
        } throws: { error in
            guard let e = error as? SchemaLoadError else { return false }
            return e.file == "inline.json" && e.pointer == pointer && e.message.contains(fragment)
        }
    }

    @Test func fileErrorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("msg-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("broken.schema.json")
        try Data("{ not json".utf8).write(to: bad)
        #expect {
            try JSONSchema(contentsOf: bad)
        } throws: { ($0 as? SchemaLoadError)?.description.contains("broken.schema.json: not JSON") == true }
        #expect {
            try SchemaRegistry.load(directory: dir)
        } throws: { ($0 as? SchemaLoadError)?.file == bad.path }
        try Data(#"{"type":"object"}"#.utf8).write(to: bad)
        #expect {
            try SchemaRegistry.load(directory: dir)
        } throws: { ($0 as? SchemaLoadError)?.message.contains("x-cloudevents-types") == true }
        #expect {
            try JSONSchema(contentsOf: dir.appendingPathComponent("missing.schema.json"))
        } throws: { ($0 as? SchemaLoadError)?.description.contains("missing.schema.json: no such file") == true }
    }
}

/// The repository's own schemas and seeds.
@Suite struct RepositorySchemaTests {
    static let schemaFiles = try! FileManager.default.contentsOfDirectory(
        at: repoRoot.appendingPathComponent("schemas"), includingPropertiesForKeys: nil).filter { $0.pathExtension == "json" }

    @Test func everySchemaFileLoadsAndIsDocumented() throws {
        #expect(Self.schemaFiles.count >= 17)
        for file in Self.schemaFiles {
            #expect(file.lastPathComponent.hasSuffix(".schema.json"), "\(file.lastPathComponent)")
            let s = try JSONSchema(contentsOf: file)
            let name = String(file.lastPathComponent.dropLast(".schema.json".count))
            #expect(s.id == "yishi:messages/" + name, "\(file.lastPathComponent)")
            #expect(!(s.title ?? "").isEmpty, "\(file.lastPathComponent)")
            #expect(!s.cloudEventTypes.isEmpty, "\(file.lastPathComponent)")
            // One type per file, except the audit family which shares one shape.
            if name != "cn.gov.yishi.saga.audit" { #expect(s.cloudEventTypes == [name]) }
        }
    }

    @Test func everyTypeHasASchemaAndATopic() {
        let types = [MessageType.applicationSubmitted, MessageType.supplementProvided, MessageType.stepRequested,
                     MessageType.compensationRequested, MessageType.stepSucceeded, MessageType.stepRejected,
                     MessageType.stepFailed, MessageType.supplementNeeded, MessageType.compensationSucceeded,
                     MessageType.compensationFailed, MessageType.sagaState, MessageType.manualCaseOpened,
                     MessageType.sagaFinished, MessageType.sagaAudit("stepDispatched"), MessageType.licenceIssued,
                     MessageType.opsRequest, MessageType.opsReply, MessageType.opsAudit, MessageType.auditChainHead]
        let topics = ["applications", "commands.tax", "events.tax", "saga-state", "saga-events", "licences", "ops", "ops-replies", "ops-audit",
                      "audit-heads"]
        for type in types {
            #expect(registry[type] != nil, "\(type)")
            #expect(topics.filter { MessageType.allowed(type, onTopic: $0) == true }.count == 1, "\(type)")
        }
        #expect(MessageType.allowed(MessageType.stepRequested, onTopic: "nonsense") == nil)
    }

    @Test func nativeSchemasOfEveryAgencyLoad() throws {
        var r = SchemaRegistry()
        var files = 0
        for agency in ["bank", "business-registration", "seal-engraving", "social-security", "tax"] {
            let directory = repoRoot.appendingPathComponent("adapters/\(agency)/native")
            try r.loadNative(directory: directory, agency: agency)
            files += try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".schema.json") }.count
        }
        #expect(files >= 20)
        #expect(r.schemas.count == files)  // one type per file: none lost, none shadowed
        #expect(r["cn.gov.yishi.dept.tax.SWDJ.request"]?.id == "yishi:tax/native/SWDJ.request")
        #expect(MessageType.allowed("cn.gov.yishi.dept.tax.SWDJ.request", onTopic: "dept.tax.requests") == true)
        #expect(MessageType.allowed("cn.gov.yishi.dept.tax.SWDJ.reply", onTopic: "dept.tax.requests") == false)
        #expect(MessageType.allowed("cn.gov.yishi.dept.bank.acmt.007.reply", onTopic: "dept.bank.replies") == true)
        #expect(MessageType.allowed("cn.gov.yishi.dept.bank.acmt.007.reply", onTopic: "dept.tax.replies") == false)
        #expect {
            try r.register(r["cn.gov.yishi.dept.tax.SWDJ.request"]!, for: "cn.gov.yishi.dept.tax.SWDJ.request")
        } throws: { ($0 as? SchemaLoadError)?.message.contains("already has a schema") == true }
    }

    /// Every seed application is schema-valid: the manifest's failures (check digits, forbidden
    /// words, duplicate names, missing materials) are business rules, not shape.
    @Test func seedApplicationsValidate() throws {
        let schema = try #require(registry[MessageType.applicationSubmitted])
        let text = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
        let manifest = try JSON.parse(Data(contentsOf: repoRoot.appendingPathComponent("seeds/applications/manifest.json")))
        let expected = try #require(manifest["applications"]?.objectValue)
        let lines = text.split(separator: "\n")
        #expect(lines.count == expected.count)
        for line in lines {
            let form = json(String(line))
            let id = form["applicationId"]?.stringValue ?? "?"
            #expect(expected[id] != nil, "\(id) not in the manifest")
            #expect(schema.validate(form).isEmpty, "\(id): \(schema.validate(form))")
        }
    }

    /// The engine's Codable encodings (instants as milliseconds) are valid payloads as they stand.
    @Test(arguments: [
        (MessageType.stepRequested, #"{"kind":"forward","sagaId":"saga-APP-1","step":"tax-registration","attempt":1,"agency":"tax","action":"register-taxpayer","requestId":"saga-APP-1/tax-registration/r0","revision":0,"deadline":1772414100000,"payload":{"uscc":"x"}}"#),
        (MessageType.compensationRequested, #"{"kind":"compensation","sagaId":"s","step":"seals","attempt":1,"agency":"seal-engraving","action":"revoke-seals","requestId":"s/seals/undo","revision":0,"deadline":"2026-03-02T09:15:00+08:00","payload":{}}"#),
        (MessageType.sagaAudit("stepDispatched"), #"{"sagaId":"s","seq":3,"at":1772414100000,"kind":"stepDispatched","step":"seals","attempt":1}"#),
        (MessageType.sagaAudit("waitStarted"), #"{"sagaId":"s","seq":2,"at":1772414100000,"kind":"waitStarted","step":"public-notice","attempt":1,"detail":"20 natural days, ends 2026-03-22 09:15"}"#),
        (MessageType.sagaAudit("waitElapsed"), #"{"sagaId":"s","seq":3,"at":1774142100000,"kind":"waitElapsed","step":"public-notice","attempt":1}"#),
        (MessageType.sagaAudit("objectionReceived"), #"{"sagaId":"s","seq":3,"at":1772414100000,"kind":"objectionReceived","step":"public-notice","attempt":1,"by":"债权人","detail":"尚有债务"}"#),
        (MessageType.objectionReceived, #"{"sagaId":"s","step":"public-notice","by":"债权人","reason":"尚有债务"}"#),
        (MessageType.applicationFiled, #"{"applicationId":"startup-subsidy-91330106MA2B3C4D5E","bundle":"startup-subsidy","submittedAt":"2026-03-02T01:00:00Z","company":{"uscc":"91330106MA2B3C4D5E","licenceId":"L-1"},"trigger":{"sagaId":"APP-1"}}"#),
        (MessageType.manualCaseOpened, #"{"step":"seals","kind":"forward","reason":"retries exhausted","openedAt":1772414100000}"#),
        (MessageType.sagaFinished, #"{"sagaId":"s","status":"completed","at":"2026-03-02T17:00:00+08:00"}"#),
        (MessageType.opsReply, #"{"requestId":"r1","ok":true,"partition":0,"sagas":[{"sagaId":"s"}]}"#),
        (MessageType.opsRequest, #"{"requestId":"r1","by":"alice","action":"list","filter":{"status":["running"],"limit":10}}"#),
    ])
    func engineShapedPayloads(_ type: String, _ payload: String) throws {
        let schema = try #require(registry[type])
        #expect(schema.validate(json(payload)).isEmpty, "\(schema.validate(json(payload)))")
    }

    @Test func commandKindMustMatchItsType() throws {
        let schema = try #require(registry[MessageType.stepRequested])
        let v = schema.validate(json(#"{"kind":"compensation","sagaId":"s","step":"a","attempt":1,"agency":"tax","action":"x","requestId":"r","revision":0,"deadline":-5,"payload":{}}"#))
        #expect(v.map(\.path) == ["$.deadline", "$.kind"])
        #expect(v.map(\.keyword) == ["anyOf", "const"])
    }

    @Test func applicationSchemaCatchesShapeErrors() throws {
        let schema = try #require(registry[MessageType.applicationSubmitted])
        let line = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
            .split(separator: "\n")[0]
        guard case .object(var form) = json(String(line)), case .object(var rep)? = form["legalRepresentative"] else {
            Issue.record("seed is not an object"); return
        }
        rep["idNumber"] = .string("1101051949123100")
        form["legalRepresentative"] = .object(rep)
        form["submittedAt"] = .string("yesterday")
        form["surprise"] = .bool(true)
        let v = schema.validate(.object(form))
        #expect(v.map(\.path).sorted() == ["$.legalRepresentative.idNumber", "$.submittedAt", "$.surprise"])
        #expect(Set(v.map(\.keyword)) == ["pattern", "format", "additionalProperties"])
    }
}
