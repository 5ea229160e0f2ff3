import Foundation
import SagaEngine

/// The hub's one JSON value type is the engine's `JSONValue`; Messaging names it `JSON`.
public typealias JSON = JSONValue

extension JSONValue {
    /// Canonical bytes: sorted keys, no escaped slashes.
    public func data() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)) ?? Data("null".utf8)
    }

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
public struct SchemaPath: Hashable, Sendable, CustomStringConvertible {
    public let description: String
    public static let root = SchemaPath(description: "$")

    public func key(_ k: String) -> SchemaPath {
        let plain = !k.isEmpty && k.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        return SchemaPath(description: plain ? description + "." + k : description + "['" + k + "']")
    }

    public func index(_ i: Int) -> SchemaPath { SchemaPath(description: description + "[\(i)]") }
}
