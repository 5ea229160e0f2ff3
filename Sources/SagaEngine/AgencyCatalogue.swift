import Foundation

/// What one agency can do: `adapters/<agency>/catalogue.json`. Bundles are checked against it,
/// so a step can only call an action the agency's adapter actually implements.
public struct AgencyCatalogue: Codable, Sendable, Equatable {
    public struct Field: Codable, Sendable, Equatable {
        public var name: String
        public var required: Bool?
        public var description: String?
    }
    public struct ErrorCode: Codable, Sendable, Equatable {
        public var code: String
        public var retryable: Bool
        public var description: String?
    }
    public struct Action: Codable, Sendable, Equatable {
        public var id: String
        public var title: String
        public var inputs: [Field]
        public var outputs: [Field]
        public var compensable: Bool
        /// The action that undoes this one; required when `compensable`.
        public var compensation: String?
        /// Licence type issued on success (免证办: later sagas reuse it via `$.licences.<type>`).
        public var issuesLicence: String?
        /// Material types the agency may ask for as 容缺 (a `supplement-needed` answer) on this
        /// action; a bundle step may only defer these (`deferrableMaterials`). Nil or empty: the
        /// action never asks for a supplement.
        public var supplementMaterials: [String]?
        /// The department's typical handling time for this action, in working minutes (its
        /// published 办理时限 in practice; for the simulated departments, the mode of their
        /// latency). Used for the applicant's expected finish time (进度查询), never for timeouts.
        /// Nil: unknown, the step's timeout stands in.
        public var typicalWorkingMinutes: Int?
    }
    public var agency: String
    public var title: String
    public var errors: [ErrorCode]
    public var actions: [Action]

    public func action(_ id: String) -> Action? { actions.first { $0.id == id } }
    public func error(_ code: String) -> ErrorCode? { errors.first { $0.code == code } }
}

/// Codes the hub itself reports for any agency, whatever the catalogue says.
public enum HubErrorCode {
    /// A step's timeout timer fired before the agency answered.
    public static let timeout = "TIMEOUT"
    /// The agency asked for materials the bundle does not accept as 容缺.
    public static let materialMissing = "MATERIAL_MISSING"
    /// Someone objected during a wait step's period (public notice).
    public static let objection = "OBJECTION"
    public static let all: Set<String> = [timeout, materialMissing, objection]
}

/// Every agency catalogue, keyed by agency id.
public struct CatalogueSet: Sendable {
    public var agencies: [String: AgencyCatalogue]
    /// Agencies with a catalogue that the hub cannot serve, with the reason (e.g. no
    /// `mapping.json` beside the catalogue, so no adapter can run for it). A bundle step on
    /// one of them is a validation problem (`unservableAgency`). Filled by `load(directory:)`.
    public var unservable: [String: String] = [:]

    /// The agency ids (the `<agency>` of `adapters/<agency>/`), sorted: the hub's agency list,
    /// from which services derive their topics and subscriptions.
    public var ids: [String] { agencies.keys.sorted() }

    public init(_ catalogues: [AgencyCatalogue]) {
        agencies = Dictionary(catalogues.map { ($0.agency, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Loads `<dir>/<agency>/catalogue.json` for every sub-directory that has one; an agency
    /// whose directory has no `mapping.json` is listed in `unservable`.
    /// Throws `LoadError` naming the file for a catalogue that does not decode or names another agency.
    public static func load(directory: URL) throws -> CatalogueSet {
        let fm = FileManager.default
        var out: [AgencyCatalogue] = []
        try ConfigFile.checkDirectory(directory, setting: "catalogues directory (--catalogues, YISHI_CATALOGUES)")
        for name in try fm.contentsOfDirectory(atPath: directory.path).sorted() {
            let file = directory.appendingPathComponent(name).appendingPathComponent("catalogue.json")
            guard fm.fileExists(atPath: file.path) else { continue }
            let c = try ConfigFile.decode(AgencyCatalogue.self, from: file)
            guard c.agency == name else { throw ConfigError("\(file.path): $.agency: '\(c.agency)' does not match its directory '\(name)'") }
            out.append(c)
        }
        var set = CatalogueSet(out)
        for c in out where !fm.fileExists(atPath: directory.appendingPathComponent(c.agency).appendingPathComponent("mapping.json").path) {
            set.unservable[c.agency] = "\(directory.appendingPathComponent(c.agency).path) has a catalogue.json but no mapping.json, so no adapter can run for it"
        }
        return set
    }

    /// Only the given agencies are served (an orchestrator limited to some agencies): every
    /// other catalogue stays known, but a bundle step on it is `unservableAgency`.
    public func serving(only served: Set<String>) -> CatalogueSet {
        var set = self
        for id in agencies.keys where !served.contains(id) && set.unservable[id] == nil {
            set.unservable[id] = "this hub serves only \(served.sorted().joined(separator: ", "))"
        }
        return set
    }

    /// Licence types some action issues.
    public var licenceTypes: Set<String> { Set(agencies.values.flatMap { $0.actions.compactMap(\.issuesLicence) }) }
}
