/// The application form's JSON Schema (draft 2020-12, `schemas/cn.gov.yishi.application.submitted.schema.json`),
/// used to check that a bundle's `$.form.…` references name fields the form can have — the
/// whole path, not only its first key (`$.form.employees.count` where the field is
/// `expectedCount` is a problem).
///
/// A path is followed through `properties` (a key), `items` / `prefixItems` (an index), local
/// `$ref`s (`#/$defs/…`) and every branch of `allOf`, `anyOf`, `oneOf`, `if`/`then`/`else`: a key
/// exists when any branch declares it, or when a branch leaves other keys open
/// (`additionalProperties` absent or not `false`; `patternProperties` are not matched: an open
/// object accepts any key). Lenient on purpose: a path some valid form can have passes.
public struct FormSchema: Sendable {
    /// Alternative forms: a path is fine when any of them can have it.
    public let roots: [JSONValue]
    /// The root `$ref`s of the form being walked resolve in (set per walk).
    private var root: JSONValue { current }
    private var current: JSONValue

    public init(_ root: JSONValue) { self.init(roots: [root]) }

    /// A schema with alternatives (e.g. the opening form and the filed form); `roots` must not be empty.
    public init(roots: [JSONValue]) {
        self.roots = roots
        current = roots.first ?? .bool(true)
    }

    /// CloudEvents types of the application forms bundles read (`$.form.…`).
    public static let applicationFormTypes = ["cn.gov.yishi.application.submitted", "cn.gov.yishi.application.filed"]

    /// The application forms among the event schemas (by CloudEvents type), or nil when there are none.
    public static func applicationForms(_ eventSchemas: [String: JSONValue]) -> FormSchema? {
        let roots = applicationFormTypes.compactMap { eventSchemas[$0] }
        return roots.isEmpty ? nil : FormSchema(roots: roots)
    }

    /// The form a 免申即享 bundle's trigger builds (`trigger.form`: an object template whose
    /// leaves are references into the event): exactly the keys the template writes.
    public static func template(_ form: [String: JSONValue]) -> FormSchema {
        func schema(_ value: JSONValue) -> JSONValue {
            guard case .object(let fields) = value else { return .object([:]) }
            return .object(["type": "object", "additionalProperties": false, "properties": .object(fields.mapValues(schema))])
        }
        return FormSchema(schema(.object(form)))
    }

    /// Why `path` cannot exist in any of the alternative forms, or nil when it can in one. The
    /// message is the first form's.
    public func problem(_ path: [JSONValue.PathComponent]) -> String? {
        var first: String?
        for root in roots {
            var walker = self
            walker.current = root
            guard let why = walker.problem(in: path) else { return nil }
            first = first ?? why
        }
        return first
    }

    /// Why `path` cannot exist in a form valid against the current root, or nil when it can.
    /// The message names the first component that is not there and the ones that are.
    private func problem(in path: [JSONValue.PathComponent]) -> String? {
        var nodes = expand(root)
        var walked = ""
        for component in path {
            switch component {
            case .key(let key):
                var next: [JSONValue] = [], known: Set<String> = [], open = false
                for node in nodes {
                    if let child = node["properties"]?[key] { next.append(child) }
                    node["properties"]?.objectValue.map { known.formUnion($0.keys) }
                    if isOpen(node) { open = true }
                }
                if next.isEmpty {
                    if open { return nil }
                    let place = walked.isEmpty ? "the application form" : "form field '\(walked)'"
                    if known.isEmpty { return "\(place) has no fields (it is not an object), so not '\(key)'" }
                    return "\(place) has no field '\(key)' (it has: \(known.sorted().joined(separator: ", ")))"
                }
                walked += walked.isEmpty ? key : "." + key
                nodes = next.flatMap(expand)
            case .index(let index):
                var next: [JSONValue] = []
                for node in nodes {
                    if let prefix = node["prefixItems"]?.arrayValue, index < prefix.count { next.append(prefix[index]) }
                    else if let items = node["items"], items.boolValue != false { next.append(items) }
                }
                if next.isEmpty { return "form field '\(walked)' is not a list, so it has no element [\(index)]" }
                walked += "[\(index)]"
                nodes = next.flatMap(expand)
            }
        }
        return nil
    }

    /// The node and every subschema that applies to the same instance.
    private func expand(_ node: JSONValue) -> [JSONValue] {
        var out: [JSONValue] = [], todo = [node], seen = 0
        while let n = todo.popLast(), seen < 256 {
            seen += 1
            out.append(n)
            if let ref = n["$ref"]?.stringValue, let target = resolve(ref) { todo.append(target) }
            for key in ["allOf", "anyOf", "oneOf"] { todo += n[key]?.arrayValue ?? [] }
            for key in ["then", "else"] { if let s = n[key] { todo.append(s) } }
        }
        return out
    }

    /// A schema that admits object keys it does not list: `true`, a schema with no `type` and no
    /// `properties` (it constrains nothing about keys), or an object schema whose
    /// `additionalProperties` (or `unevaluatedProperties`) is not `false`. Pure combinators
    /// (`$ref`, `allOf`, …) decide nothing themselves; their branches do.
    private func isOpen(_ node: JSONValue) -> Bool {
        if let b = node.boolValue { return b }
        guard case .object(let o) = node else { return false }
        if let type = o["type"]?.stringValue, type != "object" { return false }
        if o["type"] == nil, o["properties"] == nil {
            return o["$ref"] == nil && o["allOf"] == nil && o["anyOf"] == nil && o["oneOf"] == nil
        }
        if let extra = o["additionalProperties"] { return extra.boolValue != false }
        return o["unevaluatedProperties"]?.boolValue != false
    }

    /// A local JSON pointer (`#/$defs/name`, RFC 6901 escapes `~0` `~1`).
    private func resolve(_ ref: String) -> JSONValue? {
        guard ref.hasPrefix("#") else { return nil }
        var node = root
        for raw in ref.dropFirst().split(separator: "/") {
            let token = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let list = node.arrayValue, let i = Int(token), i < list.count { node = list[i] } else if let child = node[token] { node = child } else { return nil }
        }
        return node
    }
}
