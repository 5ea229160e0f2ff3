import Foundation

/// A JSON document: payloads, mappings and the application form travel as this type so the
/// engine never needs `Any` or `JSONSerialization` (which blurs booleans and numbers).
public enum JSONValue: Codable, Equatable, Hashable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            // Whole numbers print without ".0" so ids and amounts round-trip as written.
            if n.rounded() == n, abs(n) < 9.0e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses JSON text (any top-level value). Text the strict fast reader (`FastJSONParser`) is
    /// sure of is read without JSONDecoder; anything else goes to JSONDecoder, whose error it throws.
    public static func parse(_ data: Data) throws -> JSONValue {
        if let value = FastJSONParser.parse(data) { return value }
        return try JSONDecoder().decode(JSONValue.self, from: data)
    }

    public static func parse(_ text: String) throws -> JSONValue {
        try parse(Data(text.utf8))
    }

    /// Canonical text: sorted keys, so equal values always print the same bytes.
    public func text(pretty: Bool = false) -> String {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: e.encode(self), as: UTF8.self)) ?? "null"
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var doubleValue: Double? { if case .number(let n) = self { return n }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }
    public var intValue: Int? {
        guard case .number(let n) = self, n.rounded() == n, abs(n) < 9.0e15 else { return nil }
        return Int(n)
    }

    /// Follows a parsed path (object keys and array indices); nil when any component is absent.
    public func value(at path: [PathComponent]) -> JSONValue? {
        var v = self
        for p in path {
            switch (p, v) {
            case (.key(let k), .object(let o)):
                guard let next = o[k] else { return nil }
                v = next
            case (.index(let i), .array(let a)):
                guard i >= 0, i < a.count else { return nil }
                v = a[i]
            default:
                return nil
            }
        }
        return v
    }

    /// One component of a JSON path such as `company.address` or `shareholders[0].name`.
    public enum PathComponent: Hashable, Sendable, Codable {
        case key(String)
        case index(Int)
    }

    /// Parses `a.b[0].c` (the part after a `$.form.` style prefix). Nil on malformed input.
    public static func parsePath(_ text: Substring) -> [PathComponent]? {
        var out: [PathComponent] = []
        for segment in text.split(separator: ".", omittingEmptySubsequences: false) {
            var rest = segment[...]
            let nameEnd = rest.firstIndex(of: "[") ?? rest.endIndex
            let name = rest[..<nameEnd]
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else { return nil }
            out.append(.key(String(name)))
            rest = rest[nameEnd...]
            while rest.first == "[" {
                guard let close = rest.firstIndex(of: "]"), let i = Int(rest[rest.index(after: rest.startIndex)..<close]), i >= 0 else { return nil }
                out.append(.index(i))
                rest = rest[rest.index(after: close)...]
            }
            guard rest.isEmpty else { return nil }
        }
        return out
    }
}

/// Builds JSON paths for problem messages: `$.steps[3].after[0]`.
public struct JSONPath: Hashable, Sendable, CustomStringConvertible {
    public private(set) var description: String
    /// The path this one was built from and the key added, so "missing field" can point at the parent.
    private(set) var parentDescription: String?
    private(set) var lastKey: String?

    public static let root = JSONPath(description: "$")

    public func key(_ k: String) -> JSONPath {
        let plain = !k.isEmpty && k.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        return JSONPath(description: plain ? description + "." + k : description + "['" + k + "']", parentDescription: description, lastKey: k)
    }

    public func index(_ i: Int) -> JSONPath { JSONPath(description: description + "[\(i)]", parentDescription: description, lastKey: nil) }

    var parent: JSONPath { JSONPath(description: parentDescription ?? "$") }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral v: String) { self = .string(v) }
    public init(integerLiteral v: Int) { self = .number(Double(v)) }
    public init(floatLiteral v: Double) { self = .number(v) }
    public init(booleanLiteral v: Bool) { self = .bool(v) }
    public init(arrayLiteral xs: JSONValue...) { self = .array(xs) }
    public init(dictionaryLiteral kvs: (String, JSONValue)...) { self = .object(Dictionary(kvs, uniquingKeysWith: { _, b in b })) }
    public init(nilLiteral: ()) { self = .null }
}
