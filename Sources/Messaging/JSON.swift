import Foundation

/// A JSON value. Messaging keeps its own small type (rather than `Any` from
/// `JSONSerialization`, which blurs booleans and numbers) so schema checks can tell
/// `true` from `1`, and so this module needs nothing above the Kafka layer.
/// Numbers are `Double`: `integer` in a schema means "a number with no fraction".
public enum JSON: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSON].self)) }
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

    /// Parses JSON text (any top-level value).
    public static func parse(_ data: Data) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: data)
    }

    /// Canonical bytes: sorted keys, no escaped slashes.
    public func data() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)) ?? Data("null".utf8)
    }

    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var objectValue: [String: JSON]? { if case .object(let o) = self { return o }; return nil }

    /// The JSON Schema type name of this value (`integer` for whole numbers).
    var schemaType: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let n): n.rounded() == n && n.isFinite ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// JSON paths for error messages: `$.payload.legalRepresentative.idNumber`, `$.shareholders[0]`,
/// `$['odd key']`. The same notation the saga engine and the seed manifest use.
public struct JSONPath: Hashable, Sendable, CustomStringConvertible {
    public let description: String
    public static let root = JSONPath(description: "$")

    public func key(_ k: String) -> JSONPath {
        let plain = !k.isEmpty && k.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        return JSONPath(description: plain ? description + "." + k : description + "['" + k + "']")
    }

    public func index(_ i: Int) -> JSONPath { JSONPath(description: description + "[\(i)]") }
}
