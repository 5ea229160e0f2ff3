import Foundation
import Testing
@testable import Messaging

/// The official JSON Schema test suite (draft 2020-12), run against the hub's validator.
///
/// The suite sits beside the repository (`../shared/conformance/json-schema-test-suite`,
/// located from this file, never by an absolute path). Every test whose schema the validator
/// loads must give the suite's answer; a schema that does not load is skipped only when it
/// uses a keyword in `deliberatelyUnsupported` (the hub's schemas never use them, and the
/// validator refuses them at load so a schema never silently checks less than it says).
@Suite struct JSONSchemaConformanceTests {
    static let suite = repoRoot.deletingLastPathComponent()
        .appendingPathComponent("shared/conformance/json-schema-test-suite/draft2020-12")

    /// Keywords the validator refuses on purpose (see `JSONSchema`'s doc comment).
    static let deliberatelyUnsupported: Set<String> = [
        "$anchor", "$dynamicAnchor", "$dynamicRef", "$id", "$vocabulary", "contains", "contentEncoding",
        "contentMediaType", "contentSchema", "dependentRequired", "dependentSchemas", "if", "then", "else",
        "maxContains", "minContains", "maxProperties", "minProperties", "multipleOf", "patternProperties",
        "prefixItems", "propertyNames", "unevaluatedItems", "unevaluatedProperties", "uniqueItems",
    ]

    /// `$ref` other than `#` and `#/$defs/<name>` (remote documents, `$id`-relative URIs, JSON
    /// pointers into other keywords): refused at load, on purpose.
    static func usesUnsupportedRef(_ error: SchemaLoadError) -> Bool { error.message.contains("does not resolve") }

    struct Outcome { var run = 0; var skipped = 0; var failures: [String] = [] }

    static func run(file: URL) throws -> Outcome {
        var outcome = Outcome()
        guard case .array(let groups) = try JSON.parse(Data(contentsOf: file)) else { throw CocoaError(.fileReadCorruptFile) }
        let name = file.path.components(separatedBy: "draft2020-12/").last ?? file.lastPathComponent
        for group in groups {
            let description = group["description"]?.stringValue ?? "?"
            let tests = group["tests"]?.arrayValue ?? []
            let schema: JSONSchema
            do { schema = try JSONSchema(group["schema"] ?? .null) } catch {
                let keyword = error.message.hasPrefix("unsupported keyword '")
                    ? String(error.message.dropFirst("unsupported keyword '".count).dropLast()) : nil
                if keyword.map(deliberatelyUnsupported.contains) == true || usesUnsupportedRef(error) {
                    outcome.skipped += tests.count
                } else {
                    outcome.failures.append("\(name): \(description): schema does not load: \(error)")
                }
                continue
            }
            for test in tests {
                outcome.run += 1
                let expected = test["valid"] == .bool(true)
                let violations = schema.validate(test["data"] ?? .null)
                if violations.isEmpty != expected {
                    outcome.failures.append("\(name): \(description): \(test["description"]?.stringValue ?? "?"): expected "
                        + (expected ? "valid, got \(violations.map(\.description))" : "invalid, got valid"))
                }
            }
        }
        return outcome
    }

    @Test func draft2020_12() throws {
        let fm = FileManager.default
        try #require(fm.fileExists(atPath: Self.suite.path), "the JSON Schema test suite is missing at \(Self.suite.path)")
        let files = fm.enumerator(atPath: Self.suite.path)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count >= 20, "\(files)")
        var total = Outcome()
        for f in files {
            let o = try Self.run(file: Self.suite.appendingPathComponent(f))
            total.run += o.run
            total.skipped += o.skipped
            total.failures += o.failures
        }
        for f in total.failures { Issue.record(Comment(rawValue: f)) }
        print("JSON Schema test suite: \(total.run) run, \(total.failures.count) failed, \(total.skipped) skipped (unsupported keywords)")
        #expect(total.run >= 500)
    }
}
