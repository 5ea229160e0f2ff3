import Foundation

extension BundleDefinition {
    /// 免申即享: the bundle starts from a hub event instead of an application. An event of
    /// CloudEvents type `type` on hub topic `topic` (without prefix) whose data meets every
    /// condition of `when` starts one saga of the bundle, with id `<bundle id>-<key>` where
    /// `key` is the value at the data path `key` (default: the event's CloudEvents `id`), so a
    /// redelivered event (or the same fact published again) starts no second saga. The saga's
    /// form is `form` with every `"$.event.<path>"` replaced by that field of the event's data.
    /// Format and examples: docs/bundle-format.md, "Triggers".
    public struct Trigger: Codable, Sendable, Equatable {
        public var topic: String
        public var type: String
        /// Data path (dotted keys, e.g. `data.industryCode`) → condition: a string, number or
        /// boolean is equality; an array is "one of"; an object has `min` and/or `max` (numbers,
        /// inclusive) or `prefix` (strings: the value starts with one of them).
        public var when: [String: JSONValue]
        /// Data path whose value identifies the fact (e.g. `data.uscc`); nil: the CloudEvents id.
        public var key: String?
        /// The form of the started saga; `"$.event.<path>"` values read the event's data.
        public var form: [String: JSONValue]

        public init(topic: String, type: String, when: [String: JSONValue], key: String?, form: [String: JSONValue]) {
            self.topic = topic; self.type = type; self.when = when; self.key = key; self.form = form
        }

        /// The value at a dotted path of `data` (nil when absent).
        public static func value(_ data: JSONValue, at path: String) -> JSONValue? {
            var v: JSONValue? = data
            for k in path.split(separator: ".") { v = v?[String(k)] }
            return v
        }

        /// Whether `data` (the event's data) meets every condition.
        public func matches(_ data: JSONValue) -> Bool {
            for (path, condition) in when {
                guard let v = Self.value(data, at: path), Self.meets(v, condition) else { return false }
            }
            return true
        }

        static func meets(_ v: JSONValue, _ condition: JSONValue) -> Bool {
            switch condition {
            case .array(let options): return options.contains(v)
            case .object(let o):
                if let prefixes = o["prefix"]?.arrayValue {
                    guard let s = v.stringValue, prefixes.contains(where: { $0.stringValue.map(s.hasPrefix) ?? false }) else { return false }
                }
                if let min = o["min"]?.doubleValue { guard let n = v.doubleValue, n >= min else { return false } }
                if let max = o["max"]?.doubleValue { guard let n = v.doubleValue, n <= max else { return false } }
                return true
            default: return v == condition
            }
        }

        /// The saga id for an event: `<bundleId>-<key value>` with characters other than
        /// letters, digits and `-` dropped, or `<bundleId>-<CloudEvents id>`; nil when the key
        /// field is absent or empty (the event cannot be told apart from a redelivery).
        public func sagaId(bundleId: String, eventId: String, data: JSONValue) -> String? {
            let raw: String
            if let key {
                guard let v = Self.value(data, at: key) else { return nil }
                raw = v.stringValue ?? v.text()
            } else { raw = eventId }
            let clean = String(raw.unicodeScalars.filter { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" })
            guard !clean.isEmpty else { return nil }
            return String((bundleId + "-" + clean).prefix(64))
        }

        /// The form for the started saga: `form` with `$.event.` references filled from `data`
        /// (absent ones left out), plus `applicationId`, `bundle` and `submittedAt`.
        public func form(data: JSONValue, sagaId: String, bundleId: String, submittedAt: String) -> JSONValue {
            func fill(_ v: JSONValue) -> JSONValue? {
                switch v {
                case .string(let s) where s.hasPrefix("$.event."): return Self.value(data, at: String(s.dropFirst("$.event.".count)))
                case .object(let o): return .object(o.compactMapValues(fill))
                default: return v
                }
            }
            var out = form.compactMapValues(fill)
            out["applicationId"] = .string(sagaId)
            out["bundle"] = .string(bundleId)
            out["submittedAt"] = .string(submittedAt)
            return .object(out)
        }
    }
}

/// Checks of the parts a trigger and a wait step add to a bundle file; the problems come back
/// as (path, kind, message) for `BundleValidator` to file.
enum BundleExtensionCheck {
    typealias Found = [(JSONPath, BundleProblem.Kind, String)]

    static let triggerKeys: Set<String> = ["topic", "type", "when", "key", "form"]
    static let waitKeys: Set<String> = ["days", "calendar"]

    /// `"wait": {"days": N, "calendar": "natural" | "working"}`: N a whole number in 1…366.
    static func wait(_ v: JSONValue, _ p: JSONPath) -> (BundleDefinition.Wait?, Found) {
        guard case .object(let o) = v else { return (nil, [(p, .wrongType, "'wait' must be an object {\"days\": N, \"calendar\": \"natural\" | \"working\"}")]) }
        var found: Found = []
        for k in o.keys.sorted() where !waitKeys.contains(k) {
            found.append((p.key(k), .unknownKey, "unknown key '\(k)' (allowed: calendar, days)"))
        }
        var days: Int?
        if let d = o["days"] {
            if let n = d.intValue, n >= 1, n <= BundleDefinition.Wait.maxDays { days = n } else {
                found.append((p.key("days"), .badDuration, "bad wait duration \(d.text()): want a whole number of days in 1…\(BundleDefinition.Wait.maxDays)"))
            }
        } else { found.append((p, .missingField, "missing required field 'days'")) }
        var calendar: BundleDefinition.Wait.Calendar?
        if let c = o["calendar"] {
            calendar = c.stringValue.flatMap(BundleDefinition.Wait.Calendar.init(rawValue:))
            if calendar == nil { found.append((p.key("calendar"), .badDuration, "wait calendar must be 'natural' or 'working' (got \(c.text()))")) }
        } else { found.append((p, .missingField, "missing required field 'calendar'")) }
        guard let days, let calendar else { return (nil, found) }
        return (BundleDefinition.Wait(days: days, calendar: calendar), found)
    }

    /// The trigger object; every data path it names (`when`, `key`, `$.event.` references in
    /// `form`) must exist in the JSON Schema of its event type (`schemas`: type → schema).
    static func trigger(_ v: JSONValue, _ p: JSONPath, schemas: [String: JSONValue]) -> (BundleDefinition.Trigger?, Found) {
        guard case .object(let o) = v else { return (nil, [(p, .wrongType, "'trigger' must be an object")]) }
        var found: Found = []
        for k in o.keys.sorted() where !triggerKeys.contains(k) {
            found.append((p.key(k), .unknownKey, "unknown key '\(k)' (allowed: \(triggerKeys.sorted().joined(separator: ", ")))"))
        }
        func str(_ k: String) -> String? {
            guard let x = o[k] else { found.append((p, .missingField, "missing required field '\(k)'")); return nil }
            guard let s = x.stringValue, !s.isEmpty else { found.append((p.key(k), .wrongType, "must be a non-empty string")); return nil }
            return s
        }
        let topic = str("topic"), type = str("type")
        var schema: JSONValue?
        if let type {
            schema = schemas[type]
            if schema == nil {
                found.append((p.key("type"), .unknownEventField, "no schema for event type '\(type)' (known: \(schemas.keys.sorted().joined(separator: ", ")))"))
            }
        }
        func field(_ path: String, _ at: JSONPath) {
            guard let schema, let type else { return }
            if let missing = missingField(schema, path) {
                found.append((at, .unknownEventField, "event type '\(type)' has no field '\(missing)' (its schema does not declare it)"))
            }
        }
        var when: [String: JSONValue] = [:]
        if let w = o["when"] {
            if case .object(let wo) = w, !wo.isEmpty {
                when = wo
                for (path, condition) in wo.sorted(by: { $0.key < $1.key }) {
                    field(path, p.key("when").key(path))
                    if case .object(let co) = condition {
                        let bad = co.keys.filter { !["min", "max", "prefix"].contains($0) }.sorted()
                        if !bad.isEmpty || co.isEmpty {
                            found.append((p.key("when").key(path), .badValue, "a condition object has 'min', 'max' and/or 'prefix' (got: \(co.keys.sorted().joined(separator: ", ")))"))
                        }
                    }
                }
            } else { found.append((p.key("when"), .wrongType, "'when' must be a non-empty object: data path → condition")) }
        } else { found.append((p, .missingField, "missing required field 'when'")) }
        var key: String?
        if o["key"] != nil, let k = str("key") { key = k; field(k, p.key("key")) }
        var form: [String: JSONValue] = [:]
        if let f = o["form"] {
            if case .object(let fo) = f { form = fo } else { found.append((p.key("form"), .wrongType, "'form' must be an object")) }
            func walk(_ v: JSONValue, _ at: JSONPath) {
                switch v {
                case .string(let s) where s.hasPrefix("$."):
                    guard s.hasPrefix("$.event.") else { return found.append((at, .badReference, "'\(s)': a trigger form reads the event as $.event.<path>")) }
                    field(String(s.dropFirst("$.event.".count)), at)
                case .object(let o): for (k, x) in o.sorted(by: { $0.key < $1.key }) { walk(x, at.key(k)) }
                default: break
                }
            }
            walk(f, p.key("form"))
        } else { found.append((p, .missingField, "missing required field 'form'")) }
        guard found.isEmpty, let topic, let type else { return (nil, found) }
        return (BundleDefinition.Trigger(topic: topic, type: type, when: when, key: key, form: form), found)
    }

    /// The first key of dotted `path` the schema does not declare, or nil when it has all.
    /// Below an object whose schema lists no `properties` (free-form, e.g. a licence's `data`)
    /// any key is accepted, unless `additionalProperties` is false.
    static func missingField(_ schema: JSONValue, _ path: String) -> String? {
        var node = schema
        var walked: [String] = []
        for k in path.split(separator: ".").map(String.init) {
            walked.append(k)
            if node["type"]?.stringValue == "array", let items = node["items"] { node = items }
            guard let props = node["properties"]?.objectValue else {
                if node["additionalProperties"] == .bool(false) { return walked.joined(separator: ".") }
                return nil
            }
            guard let next = props[k] else { return walked.joined(separator: ".") }
            node = next
        }
        return nil
    }
}
