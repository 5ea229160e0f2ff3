import Foundation
import SagaEngine

/// The declarative part of an adapter: a JSON template that builds one message from a
/// context (`$.input…` the canonical payload, `$.replies.<NATIVE>…` earlier native replies).
///
/// | template | value |
/// | --- | --- |
/// | `"$.input.uscc"` | the value at that path (the field is omitted when the path is missing) |
/// | `"@.name"`, `"@"` | inside `$each`: the current item, or a path below it |
/// | `{"$path": P, "$map": {…}, "$default": v, "$slice": [from, to]}` | the value at P, mapped, defaulted, or a substring |
/// | `{"$each": P, "$item": T}` | an array: T for every element of the array at P |
/// | any other object or array | built field by field |
/// | any other string, number, bool | itself |
///
/// Paths: `.key`, `['key.with.dots']`, `[n]`, `[*]` (every element), `[?KEY=value]` (the first
/// element whose KEY is value).
public indirect enum Template: Sendable, Equatable {
    case literal(JSONValue)
    case path(ValuePath, map: [String: JSONValue]?, fallback: JSONValue?, slice: (Int, Int)?)
    case each(ValuePath, item: Template)
    case object([(String, Template)])
    case array([Template])

    public static func == (a: Template, b: Template) -> Bool { "\(a)" == "\(b)" }

    /// Reads a template; `at` names where it is (`mapping.json: $.actions.reserve-name…`) for errors.
    public init(_ json: JSONValue, at: String) throws(MappingError) {
        switch json {
        case .string(let s) where s.hasPrefix("$.") || s.hasPrefix("@.") || s == "@":
            self = .path(try ValuePath(s, at: at), map: nil, fallback: nil, slice: nil)
        case .object(let o) where o["$each"] != nil:
            guard let p = o["$each"]?.stringValue, let item = o["$item"] else {
                throw MappingError(at, "$each needs a path string and an $item template")
            }
            self = .each(try ValuePath(p, at: at + ".$each"), item: try Template(item, at: at + ".$item"))
        case .object(let o) where o["$path"] != nil:
            guard let p = o["$path"]?.stringValue else { throw MappingError(at, "$path must be a path string") }
            let unknown = Set(o.keys).subtracting(["$path", "$map", "$default", "$slice"])
            if let bad = unknown.sorted().first { throw MappingError(at, "unknown key '\(bad)' next to $path") }
            var slice: (Int, Int)?
            if let s = o["$slice"] {
                guard let a = s.arrayValue, a.count == 2, let from = a[0].intValue, let to = a[1].intValue, 0 <= from, from < to else {
                    throw MappingError(at + ".$slice", "expected [from, to] with 0 <= from < to")
                }
                slice = (from, to)
            }
            if let m = o["$map"], m.objectValue == nil { throw MappingError(at + ".$map", "expected an object") }
            self = .path(try ValuePath(p, at: at + ".$path"), map: o["$map"]?.objectValue, fallback: o["$default"], slice: slice)
        case .object(let o):
            var fields: [(String, Template)] = []
            for key in o.keys.sorted() { fields.append((key, try Template(o[key]!, at: at + "." + key))) }
            self = .object(fields)
        case .array(let a):
            var items: [Template] = []
            for (i, element) in a.enumerated() { items.append(try Template(element, at: at + "[\(i)]")) }
            self = .array(items)
        default:
            self = .literal(json)
        }
    }

    /// The value this template gives in `context` (with `item` the current `$each` element);
    /// nil when a path is missing and there is no default (the field is left out).
    public func render(_ context: JSONValue, item: JSONValue? = nil) throws(MappingError) -> JSONValue? {
        switch self {
        case .literal(let v):
            return v
        case .path(let p, let map, let fallback, let slice):
            guard var v = p.resolve(context, item: item), v != .null else { return fallback }
            if let map {
                let key = v.stringValue ?? v.text()
                guard let mapped = map[key] else {
                    throw MappingError(p.text, "value '\(key)' has no entry in $map (known: \(map.keys.sorted().joined(separator: ", ")))")
                }
                v = mapped
            }
            if let (from, to) = slice, let s = v.stringValue {
                let chars = Array(s)
                guard chars.count >= to else { throw MappingError(p.text, "'\(s)' is shorter than \(to) characters") }
                v = .string(String(chars[from..<to]))
            }
            return v
        case .each(let p, let itemTemplate):
            guard let list = p.resolve(context, item: item)?.arrayValue else { return nil }
            var out: [JSONValue] = []
            for element in list { out.append(try itemTemplate.render(context, item: element) ?? .null) }
            return .array(out)
        case .object(let fields):
            var o: [String: JSONValue] = [:]
            for (k, t) in fields { if let v = try t.render(context, item: item) { o[k] = v } }
            return .object(o)
        case .array(let a):
            var out: [JSONValue] = []
            for t in a { out.append(try t.render(context, item: item) ?? .null) }
            return .array(out)
        }
    }

    /// The keys directly below `$.<root>` this template reads (`reads("input")` of
    /// `{"nsrsbh": "$.input.uscc"}` is `["uscc"]`); `"*"` when it reads `$.<root>` whole. What an
    /// adapter context must still carry for the templates that have not run yet.
    public func reads(_ root: String) -> Set<String> {
        switch self {
        case .literal: return []
        case .path(let p, _, _, _): return p.key(below: root).map { [$0] } ?? []
        case .each(let p, let item): return item.reads(root).union(p.key(below: root).map { [$0] } ?? [])
        case .object(let fields): return fields.reduce(into: Set<String>()) { $0.formUnion($1.1.reads(root)) }
        case .array(let a): return a.reduce(into: Set<String>()) { $0.formUnion($1.reads(root)) }
        }
    }

    /// Which canonical input field a native field comes from: `fddbr.zjhm` →
    /// `legalRepresentative.idNumber`, `gdxx[2].zjhm` → `shareholders[2].idNumber`. Nil when the
    /// native field is not a plain copy of an input field.
    public func sourceField(of nativeField: String) -> String? {
        guard let steps = ValuePath.steps(nativeField) else { return nil }
        return trace(steps[...], itemBase: nil)
    }

    private func trace(_ steps: ArraySlice<ValuePath.Step>, itemBase: String?) -> String? {
        switch self {
        case .path(let p, _, _, _):
            // The whole field was copied; anything below it is below the source too.
            guard let base = p.inputField(itemBase: itemBase) else { return nil }
            return base + ValuePath.text(of: steps)
        case .each(let p, let item):
            guard case .index(let i)? = steps.first, let base = p.inputField(itemBase: itemBase) else { return nil }
            return item.trace(steps.dropFirst(), itemBase: base + "[\(i)]")
        case .object(let fields):
            guard case .key(let k)? = steps.first, let t = fields.first(where: { $0.0 == k })?.1 else { return nil }
            return t.trace(steps.dropFirst(), itemBase: itemBase)
        case .array(let a):
            guard case .index(let i)? = steps.first, i < a.count else { return nil }
            return a[i].trace(steps.dropFirst(), itemBase: itemBase)
        case .literal:
            return nil
        }
    }
}

/// A path into the template context (`$.input.seals[0]`) or the current item (`@.name`).
public struct ValuePath: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        case key(String)
        case index(Int)
        case all
        case match(key: String, value: String)
    }

    public let text: String
    let relative: Bool
    let steps: [Step]

    public init(_ text: String, at: String) throws(MappingError) {
        self.text = text
        relative = text.hasPrefix("@")
        guard let parsed = ValuePath.steps(String(text.drop { $0 == "$" || $0 == "@" })) else {
            throw MappingError(at, "cannot read path '\(text)'")
        }
        steps = parsed
    }

    /// Parses `.a.b[2][?K=v][*]` (a leading dot optional) into steps.
    static func steps(_ text: String) -> [Step]? {
        var out: [Step] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            if rest.first == "." { rest = rest.dropFirst(); continue }
            if rest.first == "[" {
                guard let close = rest.firstIndex(of: "]") else { return nil }
                let inside = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(after: close)...]
                if inside == "*" { out.append(.all) }
                else if inside.count >= 2, inside.first == "'", inside.last == "'" { out.append(.key(String(inside.dropFirst().dropLast()))) }
                else if let i = Int(inside), i >= 0 { out.append(.index(i)) }
                else if inside.hasPrefix("?"), let eq = inside.firstIndex(of: "=") {
                    out.append(.match(key: String(inside[inside.index(after: inside.startIndex)..<eq]), value: String(inside[inside.index(after: eq)...])))
                } else { return nil }
                continue
            }
            let end = rest.firstIndex { $0 == "." || $0 == "[" } ?? rest.endIndex
            out.append(.key(String(rest[..<end])))
            rest = rest[end...]
        }
        return out
    }

    static func text(of steps: ArraySlice<Step>) -> String {
        steps.map {
            switch $0 {
            case .key(let k): k.contains(".") ? "['\(k)']" : "." + k
            case .index(let i): "[\(i)]"
            case .all: "[*]"
            case .match(let k, let v): "[?\(k)=\(v)]"
            }
        }.joined()
    }

    func resolve(_ context: JSONValue, item: JSONValue?) -> JSONValue? {
        guard let start = relative ? item : context else { return nil }
        return Self.walk(start, steps[...])
    }

    private static func walk(_ value: JSONValue, _ steps: ArraySlice<Step>) -> JSONValue? {
        guard let step = steps.first else { return value }
        let rest = steps.dropFirst()
        switch step {
        case .key(let k): return value[k].flatMap { walk($0, rest) }
        case .index(let i):
            guard let a = value.arrayValue, i < a.count else { return nil }
            return walk(a[i], rest)
        case .all:
            return value.arrayValue.map { .array($0.compactMap { walk($0, rest) }) }
        case .match(let k, let v):
            guard let hit = value.arrayValue?.first(where: { $0[k].map { $0.stringValue ?? $0.text() } == v }) else { return nil }
            return walk(hit, rest)
        }
    }

    /// `$.input.a.b` below `input` → `a`; `$.input` → `*`; nil for a relative path or another root.
    func key(below root: String) -> String? {
        guard !relative, case .key(root)? = steps.first else { return nil }
        guard steps.count > 1 else { return "*" }
        if case .key(let k) = steps[1] { return k }
        return "*"
    }

    /// `$.input.a.b` → `a.b`; `@.x` → `<itemBase>.x`; nil for anything else.
    func inputField(itemBase: String?) -> String? {
        if relative {
            guard let itemBase else { return nil }
            return itemBase + Self.text(of: steps[...])
        }
        guard case .key("input")? = steps.first, steps.count > 1 else { return nil }
        return String(Self.text(of: steps.dropFirst()).dropFirst())
    }
}

/// A mapping file that cannot be used, or a value it cannot map; `at` says where.
public struct MappingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let at: String
    public let message: String
    public init(_ at: String, _ message: String) { self.at = at; self.message = message }
    public var description: String { "\(at): \(message)" }
}
