import Foundation
import SagaEngine

/// A JSON Schema (draft 2020-12 subset), compiled once and then only read.
///
/// Assertions: `type` (string or array; `integer` = a number without fraction), `enum`, `const`,
/// `properties`, `required`, `additionalProperties` (bool or schema), `items`, `minItems`,
/// `maxItems`, `minLength`/`maxLength` (characters = Unicode code points, as the spec says),
/// `pattern` (unanchored, like ECMA-262 `test`, with ECMA-262's `$`, `\\d`, `\\w`, `\\s`, `.`: see
/// `ECMARegex`), `minimum`, `maximum`, `exclusiveMinimum`,
/// `exclusiveMaximum`, `format: date-time` (RFC 3339, asserted), `$ref` to `#` or `#/$defs/<name>`,
/// `allOf`, `anyOf`, `oneOf`, `not`, boolean schemas. `enum` and `const` compare strings code point by
/// code point (JSON equality), not by Unicode canonical equivalence as Swift's `==` does. Annotations (`title`, `description`, `examples`, `default`,
/// `$comment`, other `format`s, `x-*`) are ignored. Any other keyword is a load error, so a schema
/// never silently checks less than it says.
public final class JSONSchema: @unchecked Sendable {
    // @unchecked: immutable after init; NSRegularExpression matching is thread-safe.
    public let id: String?
    public let title: String?
    /// The file it came from (for messages), or nil.
    public let file: String?
    /// The `x-cloudevents-types` annotation: CloudEvents types this schema checks.
    public let cloudEventTypes: [String]
    let root: Node
    let defs: [String: Node]

    public convenience init(contentsOf url: URL) throws(SchemaLoadError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SchemaLoadError(file: url.path, pointer: "", message: ConfigFile.fileProblem(error, url: url))
        }
        let json: JSON
        if let syntax = ConfigFile.syntaxError(in: data) { throw SchemaLoadError(file: url.path, pointer: "", message: "not JSON: " + syntax) }
        do { json = try JSON.parse(data) } catch {
            throw SchemaLoadError(file: url.path, pointer: "", message: "not JSON: " + (ConfigFile.syntaxError(in: data) ?? "\(error)"))
        }
        try self.init(json, file: url.path)
    }

    public init(_ json: JSON, file: String? = nil) throws(SchemaLoadError) {
        self.file = file
        let fileName = file ?? "<inline>"
        let top: [String: JSON]
        switch json {
        case .object(let o): top = o
        case .bool: top = [:]
        default: throw SchemaLoadError(file: fileName, pointer: "", message: "a schema document must be an object or a boolean")
        }
        id = top["$id"]?.stringValue
        title = top["title"]?.stringValue
        switch top["x-cloudevents-types"] {
        case nil: cloudEventTypes = []
        case .array(let a)? where a.allSatisfy({ $0.stringValue != nil }): cloudEventTypes = a.compactMap(\.stringValue)
        default: throw SchemaLoadError(file: fileName, pointer: "/x-cloudevents-types", message: "must be an array of strings")
        }
        var compiler = Compiler(file: fileName)
        var defs: [String: Node] = [:]
        if let d = top["$defs"] {
            guard case .object(let entries) = d else {
                throw SchemaLoadError(file: fileName, pointer: "/$defs", message: "must be an object")
            }
            for (name, schema) in entries { defs["#/$defs/" + name] = try compiler.compile(schema, "/$defs/" + name) }
        }
        root = try compiler.compile(json, "")
        self.defs = defs
        for (ref, pointer) in compiler.refs where ref != "#" && defs[ref] == nil {
            throw SchemaLoadError(file: fileName, pointer: pointer, message: "$ref '\(ref)' does not resolve (only '#' and '#/$defs/<name>' are supported)")
        }
    }

    /// Every violation, in document order (capped at `limit`); empty when `value` is valid.
    public func validate(_ value: JSON, limit: Int = 20) -> [SchemaViolation] {
        var out: [SchemaViolation] = []
        check(root, value, .root, &out, limit: limit, depth: 0)
        return out
    }

    // MARK: validation

    private func check(_ node: Node, _ v: JSON, _ path: SchemaPath, _ out: inout [SchemaViolation], limit: Int, depth: Int) {
        func fail(_ keyword: String, _ message: String, at p: SchemaPath? = nil) {
            if out.count < limit { out.append(SchemaViolation(path: (p ?? path).description, keyword: keyword, message: message)) }
        }
        guard depth < 64 else { return fail("$ref", "schema recursion deeper than 64") }
        if let always = node.always {
            if !always { fail("false", "no value is allowed here") }
            return
        }
        if let ref = node.ref {
            check(ref == "#" ? root : defs[ref]!, v, path, &out, limit: limit, depth: depth + 1)
        }
        if let types = node.types {
            let t = v.schemaType
            if !(types.contains(t) || (t == "integer" && types.contains("number"))) {
                return fail("type", "expected \(types.joined(separator: " or ")), found \(t)")
            }
        }
        if let e = node.enumValues, !e.contains(where: { Self.jsonEqual($0, v) }) { fail("enum", "\(short(v)) is not one of \(e.map(short).joined(separator: ", "))") }
        if let c = node.constValue, !Self.jsonEqual(c, v) { fail("const", "\(short(v)) is not \(short(c))") }

        switch v {
        case .string(let s):
            let length = s.unicodeScalars.count
            if let m = node.minLength, length < m { fail("minLength", "\(length) characters, at least \(m) expected") }
            if let m = node.maxLength, length > m { fail("maxLength", "\(length) characters, at most \(m) expected") }
            if let (text, regex) = node.pattern,
               regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) == nil {
                fail("pattern", "does not match \(text)")
            }
            if node.format == "date-time", RFC3339.parse(s) == nil { fail("format", "\(short(v)) is not an RFC 3339 date-time") }
        case .number(let n):
            if let m = node.minimum, n < m { fail("minimum", "\(short(v)) is less than \(short(.number(m)))") }
            if let m = node.maximum, n > m { fail("maximum", "\(short(v)) is greater than \(short(.number(m)))") }
            if let m = node.exclusiveMinimum, n <= m { fail("exclusiveMinimum", "\(short(v)) is not greater than \(short(.number(m)))") }
            if let m = node.exclusiveMaximum, n >= m { fail("exclusiveMaximum", "\(short(v)) is not less than \(short(.number(m)))") }
        case .array(let a):
            if let m = node.minItems, a.count < m { fail("minItems", "\(a.count) items, at least \(m) expected") }
            if let m = node.maxItems, a.count > m { fail("maxItems", "\(a.count) items, at most \(m) expected") }
            if let items = node.items {
                for (i, item) in a.enumerated() { check(items, item, path.index(i), &out, limit: limit, depth: depth) }
            }
        case .object(let o):
            for name in node.required where o[name] == nil {
                fail("required", "required property '\(name)' is missing", at: path.key(name))
            }
            for key in o.keys.sorted() {
                let child = path.key(key)
                if let p = node.properties[key] {
                    check(p, o[key]!, child, &out, limit: limit, depth: depth)
                } else if let extra = node.additional {
                    if extra.always == false { fail("additionalProperties", "property '\(key)' is not allowed", at: child) }
                    else { check(extra, o[key]!, child, &out, limit: limit, depth: depth) }
                }
            }
        default:
            break
        }

        for sub in node.allOf { check(sub, v, path, &out, limit: limit, depth: depth + 1) }
        if !node.anyOf.isEmpty {
            let failures = node.anyOf.map { violations($0, v, path, depth) }
            if !failures.contains(where: \.isEmpty) {
                fail("anyOf", "matches none of \(node.anyOf.count) alternatives (first: \(failures[0].first.map(\.description) ?? "?"))")
            }
        }
        if !node.oneOf.isEmpty {
            let failures = node.oneOf.map { violations($0, v, path, depth) }
            let matching = failures.filter(\.isEmpty).count
            if matching == 0 {
                fail("oneOf", "matches none of \(node.oneOf.count) alternatives (first: \(failures[0].first.map(\.description) ?? "?"))")
            } else if matching > 1 {
                fail("oneOf", "matches \(matching) alternatives, exactly one expected")
            }
        }
        if let not = node.not, violations(not, v, path, depth).isEmpty { fail("not", "must not match the 'not' schema") }
    }

    /// JSON equality as JSON Schema defines it (§4.2.2): strings equal when their code points are,
    /// numbers by value, arrays item by item, objects key by key. Swift's `String ==` would
    /// equate `"\u{e9}"` with `"e\u{301}"` (canonical equivalence).
    static func jsonEqual(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { jsonEqual($0, $1) }
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            return x.allSatisfy { k, v in
                y.contains { k.unicodeScalars.elementsEqual($0.key.unicodeScalars) && jsonEqual(v, $0.value) }
            }
        default: return a == b
        }
    }

    private func violations(_ node: Node, _ v: JSON, _ path: SchemaPath, _ depth: Int) -> [SchemaViolation] {
        var out: [SchemaViolation] = []
        check(node, v, path, &out, limit: 1, depth: depth + 1)
        return out
    }

    private func short(_ v: JSON) -> String {
        let text = String(decoding: v.data(), as: UTF8.self)
        return text.count > 60 ? text.prefix(57) + "..." : text
    }

    // MARK: compilation

    final class Node {
        var always: Bool?
        var ref: String?
        var types: [String]?
        var enumValues: [JSON]?
        var constValue: JSON?
        var properties: [String: Node] = [:]
        var required: [String] = []
        var additional: Node?
        var items: Node?
        var minItems: Int?, maxItems: Int?, minLength: Int?, maxLength: Int?
        var minimum: Double?, maximum: Double?, exclusiveMinimum: Double?, exclusiveMaximum: Double?
        var pattern: (String, NSRegularExpression)?
        var format: String?
        var allOf: [Node] = [], anyOf: [Node] = [], oneOf: [Node] = []
        var not: Node?
    }

    private struct Compiler {
        let file: String
        var refs: [(String, String)] = []

        static let annotations: Set<String> = ["$schema", "$id", "$comment", "$defs", "title", "description", "examples",
                                               "default", "deprecated", "readOnly", "writeOnly"]
        static let typeNames: Set<String> = ["null", "boolean", "integer", "number", "string", "array", "object"]

        mutating func compile(_ json: JSON, _ pointer: String) throws(SchemaLoadError) -> Node {
            let node = Node()
            func error(_ keyword: String, _ message: String) -> SchemaLoadError {
                SchemaLoadError(file: file, pointer: pointer + "/" + keyword, message: message)
            }
            if case .bool(let b) = json { node.always = b; return node }
            guard case .object(let o) = json else {
                throw SchemaLoadError(file: file, pointer: pointer, message: "a schema must be an object or a boolean")
            }
            func count(_ k: String) throws(SchemaLoadError) -> Int? {
                guard let v = o[k] else { return nil }
                guard case .number(let n) = v, n >= 0, n.rounded() == n else { throw error(k, "must be a non-negative integer") }
                return Int(n)
            }
            func number(_ k: String) throws(SchemaLoadError) -> Double? {
                guard let v = o[k] else { return nil }
                guard case .number(let n) = v else { throw error(k, "must be a number") }
                return n
            }
            func list(_ k: String) throws(SchemaLoadError) -> [Node] {
                guard let v = o[k] else { return [] }
                guard case .array(let a) = v, !a.isEmpty else { throw error(k, "must be a non-empty array of schemas") }
                var nodes: [Node] = []
                for (i, s) in a.enumerated() { nodes.append(try compile(s, pointer + "/\(k)/\(i)")) }
                return nodes
            }
            for (k, v) in o {
                switch k {
                case "$ref":
                    guard let r = v.stringValue else { throw error(k, "must be a string") }
                    node.ref = r
                    refs.append((r, pointer + "/$ref"))
                case "type":
                    let names: [String]
                    switch v {
                    case .string(let s): names = [s]
                    case .array(let a) where !a.isEmpty && a.allSatisfy({ $0.stringValue != nil }): names = a.compactMap(\.stringValue)
                    default: throw error(k, "must be a type name or a non-empty array of them")
                    }
                    if let bad = names.first(where: { !Self.typeNames.contains($0) }) { throw error(k, "unknown type '\(bad)'") }
                    node.types = names
                case "enum":
                    guard case .array(let a) = v else { throw error(k, "must be an array") }
                    node.enumValues = a
                case "const": node.constValue = v
                case "properties":
                    guard case .object(let props) = v else { throw error(k, "must be an object") }
                    for (name, s) in props { node.properties[name] = try compile(s, pointer + "/properties/" + name) }
                case "required":
                    guard case .array(let a) = v, a.allSatisfy({ $0.stringValue != nil }) else { throw error(k, "must be an array of strings") }
                    node.required = a.compactMap(\.stringValue)
                case "additionalProperties": node.additional = try compile(v, pointer + "/" + k)
                case "items": node.items = try compile(v, pointer + "/" + k)
                case "minItems": node.minItems = try count(k)
                case "maxItems": node.maxItems = try count(k)
                case "minLength": node.minLength = try count(k)
                case "maxLength": node.maxLength = try count(k)
                case "minimum": node.minimum = try number(k)
                case "maximum": node.maximum = try number(k)
                case "exclusiveMinimum": node.exclusiveMinimum = try number(k)
                case "exclusiveMaximum": node.exclusiveMaximum = try number(k)
                case "pattern":
                    guard let p = v.stringValue else { throw error(k, "must be a string") }
                    do { node.pattern = (p, try ECMARegex.compile(p)) } catch {
                        throw SchemaLoadError(file: file, pointer: pointer + "/pattern", message: "invalid regular expression '\(p)'")
                    }
                case "format":
                    guard let f = v.stringValue else { throw error(k, "must be a string") }
                    node.format = f
                case "allOf": node.allOf = try list(k)
                case "anyOf": node.anyOf = try list(k)
                case "oneOf": node.oneOf = try list(k)
                case "not": node.not = try compile(v, pointer + "/not")
                default:
                    guard Self.annotations.contains(k) || k.hasPrefix("x-") else {
                        throw error(k, "unsupported keyword '\(k)'")
                    }
                }
            }
            return node
        }
    }
}

/// One failed assertion: where in the instance, which keyword, and why.
public struct SchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// JSON path of the offending value (for `required`: of the missing property).
    public let path: String
    public let keyword: String
    public let message: String
    public var description: String { "\(path): \(keyword): \(message)" }
}

public struct SchemaLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    /// JSON Pointer into the schema document ("" = the whole document).
    public let pointer: String
    public let message: String
    public var description: String { "\(file)\(pointer.isEmpty ? "" : " at \(pointer)"): \(message)" }
}
