import SagaEngine

/// Loading new bundle versions into a running orchestrator (SIGHUP) without a restart.
///
/// A reload takes effect only when the whole bundle directory is valid and every version the
/// instance's running sagas need is still there, unchanged (the same fingerprint: versions are
/// immutable once sagas run on them, see `DefinitionCheck`). New applications then get the newest
/// versions; running sagas keep the version they started on. Anything else is refused with the
/// reason and the loaded library stays, so a half-edited directory never reaches the sagas.
public enum BundleReload {
    public struct Reloaded: Sendable {
        public var library: BundleLibrary
        /// `"<id> v<version>"` of versions that were not loaded before, and of versions no longer loaded.
        public var added: [String]
        public var removed: [String]
    }

    public enum Refusal: Error, CustomStringConvertible, Sendable {
        /// The directory or a catalogue or calendar could not be read.
        case unreadable(String)
        case invalid([BundleProblem])
        case empty(String)
        /// Running sagas need versions that are gone or were edited in place.
        case definitionsChanged([DefinitionCheck.Problem])

        public var description: String {
            switch self {
            case .unreadable(let why): return "cannot load the bundle directory: \(why)"
            case .invalid(let problems): return "bundle files have problems: " + problems.map(\.description).joined(separator: "; ")
            case .empty(let directory): return "\(directory): no bundle definitions (*.json) found"
            case .definitionsChanged(let problems): return problems.map(\.description).joined(separator: "; ")
            }
        }
    }

    /// Loads with `load` and checks the result against `running` (the instance's sagas).
    public static func reload(current: BundleLibrary, running: [SagaState], directory: String,
                              load: () throws -> BundleLibrary) -> Result<Reloaded, Refusal> {
        let next: BundleLibrary
        do { next = try load() } catch { return .failure(.unreadable("\(error)")) }
        guard next.problems.isEmpty else { return .failure(.invalid(next.problems)) }
        guard !next.bundles.isEmpty else { return .failure(.empty(directory)) }
        let problems = DefinitionCheck.problems(running, library: next, directory: directory)
        guard problems.isEmpty else { return .failure(.definitionsChanged(problems)) }
        let before = Set(current.bundles.map { "\($0.id) v\($0.version)" }), after = Set(next.bundles.map { "\($0.id) v\($0.version)" })
        return .success(Reloaded(library: next, added: after.subtracting(before).sorted(), removed: before.subtracting(after).sorted()))
    }
}
