/// A bundle file after validation, with bundle-level `defaults` already folded into each step.
/// The file format is described in docs/bundle-format.md.
public struct BundleDefinition: Codable, Sendable, Equatable {
    public var id: String
    /// Bumped on every change; a running saga keeps the version it started with.
    public var version: Int
    public var title: String
    public var description: String?
    public var sla: SLA
    public var steps: [Step]
    /// The bundle version this one was composed over (`extends`), nil for a self-contained file.
    /// Informational: the steps above are already the composed ones (see `BundleComposer`).
    public var extends: Base? = nil
    /// 免申即享: set when the bundle starts from a hub event instead of an application (nil,
    /// and absent from the encoding, otherwise).
    public var trigger: Trigger? = nil

    public struct Base: Codable, Sendable, Equatable {
        public var bundle: String
        public var version: Int
    }

    public struct SLA: Codable, Sendable, Equatable {
        public var workingDays: Double
        /// Name of a calendar under `seeds/calendar/`.
        public var calendar: String
        /// The saga is "at risk" once only this much working time is left before the deadline.
        public var atRiskRemaining: String
    }

    public struct Retry: Codable, Sendable, Equatable {
        /// Total tries including the first; 1 means no retry.
        public var attempts: Int
        public var backoffBase: String
        public var backoffCap: String
        /// 0…1: the share of each backoff that is randomised (deterministically, see SagaEngine).
        public var jitter: Double
        public var retryableCodes: [String]

        public static let none = Retry(attempts: 1, backoffBase: "1s", backoffCap: "1s", jitter: 0, retryableCodes: [])
    }

    public enum FailurePolicy: String, Codable, Sendable, CaseIterable {
        /// Undo every completed compensable step in reverse completion order, then end `compensated`.
        case compensate
        /// Open a 办不成事 case for a named human queue; other branches go on.
        case manual
        /// End the saga `failed` at once, undoing nothing.
        case fail
    }

    public struct Step: Codable, Sendable, Equatable {
        public var id: String
        public var title: String?
        public var agency: String
        public var action: String
        public var after: [String]
        /// Payload field → mapping (see `Mapping`).
        public var input: [String: JSONValue]
        public var timeout: String
        public var retry: Retry
        public var onFailure: FailurePolicy
        /// Overrides the catalogue's compensation action.
        public var compensation: String?
        /// Materials this step accepts as missing (容缺受理): the agency may answer "supplement needed".
        public var deferrableMaterials: [String]
        /// Set on a timed wait step (a public notice period): no agency is asked; the step
        /// succeeds when the period ends and fails with `OBJECTION` when someone objects.
        /// Its `agency` is `Wait.agency` and its `action` `Wait.action`. Nil (and absent from the
        /// encoding, so fingerprints of other steps are unchanged) on agency steps.
        public var wait: Wait? = nil
    }

    /// How long a wait step waits: `days` whole days on the `natural` calendar (24 h each, wall
    /// time) or `working` days of the bundle's SLA calendar (7 working hours each).
    public struct Wait: Codable, Sendable, Equatable {
        public enum Calendar: String, Codable, Sendable, CaseIterable { case natural, working }
        public var days: Int
        public var calendar: Calendar
        /// The pseudo agency and action of wait steps (no adapter, no topic: the hub waits itself).
        public static let agency = "hub"
        public static let action = "wait"
        /// Longest period a wait step may have (days).
        public static let maxDays = 366
        public init(days: Int, calendar: Calendar) { self.days = days; self.calendar = calendar }
    }
}

/// A reference inside an input mapping.
public enum MappingRef: Equatable, Sendable {
    /// `$.form.company.address`: the application form.
    case form([JSONValue.PathComponent])
    /// `$.steps.<stepId>.outputs.<field>`: an output of a (transitive) predecessor.
    case stepOutput(step: String, field: String)
    /// `$.licences.<type>.<field>`: an e-licence already issued (免证办).
    case licence(type: String, field: String)

    /// Parses a `$.`-string; the error text explains the expected forms.
    public static func parse(_ s: String) -> Result<MappingRef, MappingError> {
        let parts = s.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "$" else { return .failure(MappingError(message: "'\(s)' is not a reference")) }
        switch parts[1] {
        case "form":
            guard parts.count == 3, let path = JSONValue.parsePath(parts[2]) else {
                return .failure(MappingError(message: "'\(s)': want $.form.<field>[.<field>…]"))
            }
            return .success(.form(path))
        case "steps":
            let p = s.split(separator: ".", omittingEmptySubsequences: false)
            guard p.count == 5, p[3] == "outputs", !p[2].isEmpty, !p[4].isEmpty else {
                return .failure(MappingError(message: "'\(s)': want $.steps.<stepId>.outputs.<field>"))
            }
            return .success(.stepOutput(step: String(p[2]), field: String(p[4])))
        case "licences":
            let p = s.split(separator: ".", omittingEmptySubsequences: false)
            guard p.count == 4, !p[2].isEmpty, !p[3].isEmpty else {
                return .failure(MappingError(message: "'\(s)': want $.licences.<type>.<field>"))
            }
            return .success(.licence(type: String(p[2]), field: String(p[3])))
        default:
            return .failure(MappingError(message: "'\(s)': a reference starts with $.form, $.steps or $.licences"))
        }
    }

    public static func isReference(_ s: String) -> Bool { s.hasPrefix("$.") || s == "$" }
}

public struct MappingError: Error, Equatable, Sendable { public var message: String }
