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

    public init(_ catalogues: [AgencyCatalogue]) {
        agencies = Dictionary(catalogues.map { ($0.agency, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Loads `<dir>/<agency>/catalogue.json` for every sub-directory that has one.
    public static func load(directory: URL) throws -> CatalogueSet {
        let fm = FileManager.default
        var out: [AgencyCatalogue] = []
        for name in try fm.contentsOfDirectory(atPath: directory.path).sorted() {
            let file = directory.appendingPathComponent(name).appendingPathComponent("catalogue.json")
            guard fm.fileExists(atPath: file.path) else { continue }
            do {
                let c = try JSONDecoder().decode(AgencyCatalogue.self, from: Data(contentsOf: file))
                guard c.agency == name else { throw LoadError(description: "agency '\(c.agency)' does not match its directory") }
                out.append(c)
            } catch {
                throw LoadError(description: "\(file.path): \(error)")
            }
        }
        return CatalogueSet(out)
    }

    /// Licence types some action issues.
    public var licenceTypes: Set<String> { Set(agencies.values.flatMap { $0.actions.compactMap(\.issuesLicence) }) }
}
