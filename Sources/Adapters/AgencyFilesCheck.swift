import Foundation
import Messaging
import SagaEngine

/// Checks an agency's files without starting an adapter (`yishi adapters validate`):
/// `adapters/<agency>/catalogue.json`, `mapping.json` against the catalogue, every native
/// schema under `native/` (it must compile), and the mapping against the native schemas:
/// each mapped native call has a request and a reply schema; every field a request template
/// writes (nested objects and `$each` items included) and the envelope fields are properties
/// of the request schema; every `$.replies.<NATIVE>.<field>` an output reads is a call of the
/// action and a property of its reply schema; the reply's status, message, field and echoed
/// request id fields are properties of every reply schema.
/// A problem is `file: $.path: message`, like the bundle validator's.
public enum AgencyFilesCheck {
    public struct Problem: Sendable, Equatable, Encodable, CustomStringConvertible {
        public var agency: String
        public var file: String
        public var path: String
        public var message: String
        public var description: String { "\(file): \(path): \(message)" }
        public init(agency: String, file: String, path: String, message: String) {
            self.agency = agency; self.file = file; self.path = path; self.message = message
        }
    }

    /// Problems of every `<adapters>/<agency>/` that has a `catalogue.json` or a `mapping.json`.
    public static func problems(adapters: URL) -> [Problem] {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: adapters.path)) ?? []).sorted()
        return names.flatMap { name -> [Problem] in
            let dir = adapters.appendingPathComponent(name)
            guard fm.fileExists(atPath: dir.appendingPathComponent("catalogue.json").path)
                    || fm.fileExists(atPath: dir.appendingPathComponent("mapping.json").path) else { return [] }
            return problems(agency: dir)
        }
    }

    /// Problems of one agency directory (`adapters/<agency>`).
    public static func problems(agency dir: URL) -> [Problem] {
        let agency = dir.lastPathComponent
        var out: [Problem] = []
        func add(_ file: URL, _ path: String, _ message: String) {
            out.append(Problem(agency: agency, file: file.path, path: path, message: message))
        }
        let catalogueFile = dir.appendingPathComponent("catalogue.json")
        let mappingFile = dir.appendingPathComponent("mapping.json")
        let catalogue: AgencyCatalogue
        do {
            catalogue = try JSONDecoder().decode(AgencyCatalogue.self, from: Data(contentsOf: catalogueFile))
        } catch {
            add(catalogueFile, "$", "not a readable catalogue: \(error)")
            return out
        }
        if catalogue.agency != agency { add(catalogueFile, "$.agency", "'\(catalogue.agency)' does not match its directory '\(agency)'") }
        for (i, a) in catalogue.actions.enumerated() where a.compensable {
            if a.compensation.flatMap(catalogue.action) == nil {
                add(catalogueFile, "$.actions[\(i)].compensation", "a compensable action needs a compensation that is an action of this catalogue")
            }
        }

        // Native schemas: every file compiles.
        let native = dir.appendingPathComponent("native")
        var schemas: [String: JSONValue] = [:]
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: native.path)) ?? []).sorted() where name.hasSuffix(".schema.json") {
            let file = native.appendingPathComponent(name)
            do {
                _ = try JSONSchema(contentsOf: file)
                schemas[String(name.dropLast(".schema.json".count))] = try JSONValue.parse(Data(contentsOf: file))
            } catch let e as SchemaLoadError {
                add(file, e.pointer.isEmpty ? "$" : e.pointer, e.message)
            } catch {
                add(file, "$", "\(error)")
            }
        }

        let mapping: AgencyMapping
        do {
            mapping = try AgencyMapping.load(mappingFile, catalogue: catalogue)
        } catch let e as MappingError {
            let prefix = mappingFile.path + ": "
            let path = e.at.hasPrefix(prefix) ? String(e.at.dropFirst(prefix.count)) : (e.at == mappingFile.path ? "$" : e.at)
            add(mappingFile, path, e.message)
            return out
        } catch {
            add(mappingFile, "$", "\(error)")
            return out
        }

        func properties(_ schema: JSONValue?) -> [String: JSONValue]? { schema?["properties"]?.objectValue }
        func items(_ schema: JSONValue?) -> JSONValue? { schema?["items"] }
        /// Every field a template writes must exist in the schema at that place.
        func check(_ t: Template, _ schema: JSONValue?, _ at: String, _ file: URL, _ what: String) {
            switch t {
            case .object(let fields):
                guard let props = properties(schema) else { return }
                for (k, v) in fields {
                    if let s = props[k] {
                        check(v, s, at + "." + k, file, what)
                    } else {
                        add(file, at + "." + k, "'\(k)' is not a field of \(what) (known: \(props.keys.sorted().joined(separator: ", ")))")
                    }
                }
            case .each(_, let item): check(item, items(schema), at + ".$item", file, what)
            case .array(let a): for (i, v) in a.enumerated() { check(v, items(schema), at + "[\(i)]", file, what) }
            default: break
            }
        }
        let envelopeFields = [mapping.envelope.requestId, mapping.envelope.action, mapping.envelope.sagaRef, mapping.envelope.stepRef]
        let replyFields = [mapping.reply.requestId, mapping.reply.status, mapping.reply.code, mapping.reply.message, mapping.reply.field]
        var checked: Set<String> = []
        for (id, action) in mapping.actions.sorted(by: { $0.key < $1.key }) {
            let calls = Set(action.calls.map(\.native))
            for (i, call) in action.calls.enumerated() {
                let at = "$.actions.\(id).calls[\(i)]"
                let requestName = "\(call.native).request", replyName = "\(call.native).reply"
                guard let request = schemas[requestName] else {
                    add(mappingFile, at + ".native", "no native schema \(native.appendingPathComponent(requestName + ".schema.json").path)"); continue
                }
                if schemas[replyName] == nil {
                    add(mappingFile, at + ".native", "no native schema \(native.appendingPathComponent(replyName + ".schema.json").path)")
                }
                check(call.request, request, at + ".request", mappingFile, "\(requestName).schema.json")
                if checked.insert(call.native).inserted {
                    let file = native.appendingPathComponent(requestName + ".schema.json")
                    for f in envelopeFields where properties(request)?[f] == nil {
                        add(file, "$.properties", "the envelope field '\(f)' (mapping.json $.envelope) is not a property")
                    }
                    if let reply = schemas[replyName] {
                        for f in Set(replyFields) where properties(reply)?[f] == nil {
                            add(native.appendingPathComponent(replyName + ".schema.json"), "$.properties", "the reply field '\(f)' (mapping.json $.reply) is not a property")
                        }
                    }
                }
            }
            // Outputs read earlier replies: $.replies.<NATIVE>.<field>.
            func outputs(_ t: Template, _ at: String) {
                switch t {
                case .path(let p, _, _, _), .each(let p, _):
                    guard case .key("replies")? = p.steps.first else { return }
                    guard p.steps.count > 1, case .key(let n) = p.steps[1] else { return }
                    guard calls.contains(n) else {
                        add(mappingFile, at, "'\(p.text)' reads the reply of '\(n)', which is not a call of this action (calls: \(calls.sorted().joined(separator: ", ")))"); return
                    }
                    if p.steps.count > 2, case .key(let f) = p.steps[2], let props = properties(schemas["\(n).reply"]), props[f] == nil {
                        add(mappingFile, at, "'\(p.text)': '\(f)' is not a field of \(n).reply.schema.json (known: \(props.keys.sorted().joined(separator: ", ")))")
                    }
                    if case .each(_, let item) = t { outputs(item, at + ".$item") }
                case .object(let fields): for (k, v) in fields { outputs(v, at + "." + k) }
                case .array(let a): for (i, v) in a.enumerated() { outputs(v, at + "[\(i)]") }
                case .literal: break
                }
            }
            outputs(action.outputs, "$.actions.\(id).outputs")
        }
        return out
    }
}
