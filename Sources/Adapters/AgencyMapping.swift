import Foundation
import SagaEngine

/// `adapters/<agency>/mapping.json`: how the hub's canonical actions become one department's
/// native messages and how its replies become canonical events. See docs/adapters.md.
public struct AgencyMapping: Sendable {
    /// The department's names for the fields every request carries.
    public struct RequestEnvelope: Sendable, Equatable {
        public var requestId: String
        public var action: String
        public var sagaRef: String
        public var stepRef: String
    }

    /// The department's names for the result fields of every reply.
    public struct ReplyEnvelope: Sendable, Equatable {
        /// The echoed request id (`OrgnlMsgId` for the bank, else the request's own field).
        public var requestId: String
        /// Field whose value says success or not, and the values that mean success.
        public var status: String
        public var success: [String]
        /// Field with the result code (the same as `status` for most departments).
        public var code: String
        public var message: String
        public var field: String
    }

    /// One native request within a canonical action (most actions need one; some a sequence).
    public struct Call: Sendable {
        public var native: String
        public var request: Template
    }

    public struct Action: Sendable {
        public var calls: [Call]
        /// Canonical outputs from `$.input` and `$.replies.<NATIVE>`.
        public var outputs: Template
    }

    public let agency: String
    public let envelope: RequestEnvelope
    public let reply: ReplyEnvelope
    /// Native result code → canonical error code of the catalogue.
    public let errors: [String: String]
    /// Canonical code for a native code not listed in `errors`.
    public let otherwise: String
    /// Native codes meaning "accepted with materials missing" (容缺): a supplement is needed.
    public let supplementCodes: Set<String>
    /// The materials the department names in such a reply, as canonical material types: a
    /// template over `$.reply` (the native reply), e.g. `{"$each": "$.reply.qbcl", "$item": "@"}`.
    /// These, not the form's "not provided" list, are what the applicant is asked for. Nil when
    /// the department names none (the form's not-provided materials are asked for then).
    public let supplementMaterials: Template?
    public let actions: [String: Action]
    /// Catalogue actions this department's interface does not offer, with the reason given to the saga.
    public let unsupported: [String: String]
    public let file: String

    public static func load(_ url: URL, catalogue: AgencyCatalogue) throws -> AgencyMapping {
        let json: JSONValue
        json = try ConfigFile.json(url)
        return try AgencyMapping(json, file: url.path, catalogue: catalogue)
    }

    public init(_ json: JSONValue, file: String, catalogue: AgencyCatalogue) throws(MappingError) {
        self.file = file
        func string(_ value: JSONValue?, _ path: String) throws(MappingError) -> String {
            guard let s = value?.stringValue, !s.isEmpty else { throw MappingError("\(file): $.\(path)", "expected a non-empty string") }
            return s
        }
        agency = try string(json["agency"], "agency")
        guard agency == catalogue.agency else {
            throw MappingError("\(file): $.agency", "'\(agency)' but the catalogue is for '\(catalogue.agency)'")
        }
        let e = json["envelope"], r = json["reply"]
        envelope = RequestEnvelope(requestId: try string(e?["requestId"], "envelope.requestId"), action: try string(e?["action"], "envelope.action"),
                                   sagaRef: try string(e?["sagaRef"], "envelope.sagaRef"), stepRef: try string(e?["stepRef"], "envelope.stepRef"))
        let status = try string(r?["status"], "reply.status")
        guard let success = r?["success"]?.arrayValue?.compactMap(\.stringValue), !success.isEmpty else {
            throw MappingError("\(file): $.reply.success", "expected a list of result values that mean success")
        }
        reply = ReplyEnvelope(requestId: try string(r?["requestId"], "reply.requestId"), status: status, success: success,
                              code: r?["code"]?.stringValue ?? status, message: try string(r?["message"], "reply.message"),
                              field: try string(r?["field"], "reply.field"))
        var errors: [String: String] = [:]
        for (native, canonical) in json["errors"]?.objectValue ?? [:] {
            let code = try string(canonical, "errors.\(native)")
            guard catalogue.error(code) != nil || HubErrorCode.all.contains(code) else {
                throw MappingError("\(file): $.errors.\(native)", "'\(code)' is not an error code of the \(agency) catalogue")
            }
            errors[native] = code
        }
        self.errors = errors
        otherwise = try string(json["otherwise"], "otherwise")
        guard catalogue.error(otherwise) != nil else {
            throw MappingError("\(file): $.otherwise", "'\(otherwise)' is not an error code of the \(agency) catalogue")
        }
        supplementCodes = Set(json["supplementCodes"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        supplementMaterials = try json["supplementMaterials"].map { v throws(MappingError) in try Template(v, at: "\(file): $.supplementMaterials") }
        var actions: [String: Action] = [:]
        for (id, a) in json["actions"]?.objectValue ?? [:] {
            let at = "\(file): $.actions.\(id)"
            guard catalogue.action(id) != nil else { throw MappingError(at, "'\(id)' is not an action of the \(agency) catalogue") }
            guard let calls = a["calls"]?.arrayValue, !calls.isEmpty else { throw MappingError(at + ".calls", "expected at least one native call") }
            actions[id] = Action(
                calls: try calls.enumerated().map { i, c throws(MappingError) in
                    Call(native: try string(c["native"], "actions.\(id).calls[\(i)].native"),
                         request: try Template(c["request"] ?? .object([:]), at: "\(at).calls[\(i)].request"))
                },
                outputs: try Template(a["outputs"] ?? .object([:]), at: at + ".outputs"))
        }
        var unsupported: [String: String] = [:]
        for (id, why) in json["unsupported"]?.objectValue ?? [:] {
            guard catalogue.action(id) != nil else { throw MappingError("\(file): $.unsupported.\(id)", "'\(id)' is not an action of the \(agency) catalogue") }
            unsupported[id] = try string(why, "unsupported.\(id)")
        }
        self.unsupported = unsupported
        let missing = catalogue.actions.map(\.id).filter { actions[$0] == nil && unsupported[$0] == nil }
        if let first = missing.first {
            throw MappingError("\(file): $.actions", "no mapping for catalogue action '\(first)' (map it, or list it under $.unsupported with a reason)" + (missing.count > 1 ? " (and \(missing.count - 1) more)" : ""))
        }
        self.actions = actions
    }

    /// Loads `<dir>/<agency>/mapping.json` for every catalogue.
    public static func loadAll(directory: URL, catalogues: CatalogueSet) throws -> [String: AgencyMapping] {
        var out: [String: AgencyMapping] = [:]
        for (agency, catalogue) in catalogues.agencies {
            out[agency] = try load(directory.appendingPathComponent(agency).appendingPathComponent("mapping.json"), catalogue: catalogue)
        }
        return out
    }
}
